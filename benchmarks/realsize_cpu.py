"""Real-size CPU speed: one classifier-free-guidance step of the ModelScope T2V UNet (random weights at the released
size, 16 frames 256², latent [2,4,16,32,32] = the [uncond, cond] batch both pipelines run) and the VAE decode of
16 frames, through
  (a) stock diffusers fp32   (``UNet3DConditionModel`` / ``AutoencoderKL.from_pretrained``; all frames decoded at once)
  (b) stock diffusers bf16   (the same with ``torch_dtype=torch.bfloat16``)
  (c) the project's path     (sdk.ml loaders, ``resolve_dtype("auto")``, ``place`` → sdk.ml.accel, ``decode_video``)
in one process, under the environment the worker starts with (``sdk.executor.worker_env``: the process re-executes
itself with it). Prints s/step (wall and CPU seconds: on a shared machine CPU-s / threads is the better estimate of
an idle machine's wall time), peak RSS, the ratios, and the numerical agreement of (b), (c) with (a).

    nice -n 10 .venv/bin/python benchmarks/realsize_cpu.py --weights /work/realsize/t2v-diffusers [--write]
        [--steps 2] [--cases abc] [--no-vae] [--no-unet] [--cache DIR] [--second-process] [--full] [--json F]

``--write`` writes the real-size twin first when the folder is missing (7 GB). ``--cache`` is the compile cache
(default: a fresh folder, so the first call shows a cold compile); ``--second-process`` then runs (c) again in a
new process on the same cache (what a restarted worker pays). ``--full`` times one 50-step generation end to end
through ``T2VGenerator.generate`` with a ``JobContext``, after everything else, in a fresh process
(``--full-only`` runs just that). Never run two of these at once:
a real-size process holds 5-10 GB.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CHILD_MARK = "VGEN_REALSIZE_BENCH"
GB = 2 ** 30


def reexec_with_worker_env(cache: str) -> None:
    """Restart this script under the worker's environment (malloc tuning and the compile cache must be set before
    the process starts)."""
    if os.environ.get(CHILD_MARK):
        return
    from sdk.executor import worker_env
    from sdk.ml.accel import CACHE_ENV

    env = worker_env(dict(os.environ))
    env[CACHE_ENV] = cache
    env["TORCHINDUCTOR_CACHE_DIR"] = cache
    env[CHILD_MARK] = "1"
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def _ctx(tmp: Path) -> Any:
    """A job context with a model cache of its own, as a worker's job gets."""
    from sdk.context import JobContext, ModelCache

    return JobContext("bench", lambda e: None, staging_dir=tmp / "staging", models=ModelCache())


def _psnr(a: Any, b: Any, peak: float = 2.0) -> float:
    """PSNR in dB of ``b`` against ``a`` (pixels in [-1, 1] → peak-to-peak 2)."""
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)


def _rel(a: Any, b: Any) -> float:
    return float((a.float() - b.float()).norm() / a.float().norm())


def timed(fn: Callable[[], Any], steps: int) -> dict[str, Any]:
    """First call (compile, lazy init) timed on its own, then ``steps`` calls: median wall and CPU seconds."""
    import torch

    from sdk.ml.process_memory import rss

    out: dict[str, Any] = {}
    with torch.inference_mode():
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        out["first_wall"], out["first_cpu"] = time.perf_counter() - t, time.process_time() - c
        walls, cpus = [], []
        for _ in range(steps):
            t, c = time.perf_counter(), time.process_time()
            result = fn()
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
    out["wall"] = statistics.median(walls) if walls else out["first_wall"]
    out["cpu"] = statistics.median(cpus) if cpus else out["first_cpu"]
    out["peak_gb"] = rss()["peak"] / GB
    out["rss_gb"] = rss()["rss"] / GB
    out["result"] = result
    return out


def unet_inputs(dtype: Any, weights: Path) -> tuple[Any, Any, Any]:
    import torch

    width = json.loads((weights / "unet" / "config.json").read_text()).get("cross_attention_dim", 1024)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 16, 32, 32, generator=g)  # CFG batch [uncond, cond], 16 frames, 256² / 8
    e = torch.randn(2, 77, width, generator=g)
    return x.to(dtype), torch.tensor(981), e.to(dtype)


def vae_latents() -> Any:
    import torch

    return torch.randn(1, 4, 16, 32, 32, generator=torch.Generator().manual_seed(1))


def run_case(case: str, weights: Path, steps: int, do_vae: bool, do_unet: bool) -> dict[str, Any]:
    import torch

    from sdk.ml.process_memory import reset_peak, rss

    cpu = torch.device("cpu")
    rec: dict[str, Any] = {"case": case}
    if case in "ab":
        from diffusers import AutoencoderKL, UNet3DConditionModel

        dtype = torch.float32 if case == "a" else torch.bfloat16
        rec["dtype"] = str(dtype).removeprefix("torch.")
        if do_vae:
            reset_peak()
            before = rss()["rss"]
            t = time.perf_counter()
            vae = AutoencoderKL.from_pretrained(weights / "vae", torch_dtype=dtype).eval()
            rec["vae_load_s"] = time.perf_counter() - t
            lat = vae_latents()

            def stock_decode() -> Any:  # TextToVideoSDPipeline.decode_latents: every frame in one batch
                x = (lat / vae.config.scaling_factor).permute(0, 2, 1, 3, 4).reshape(16, 4, 32, 32).to(dtype)
                return vae.decode(x).sample.float()

            r = timed(stock_decode, 0)
            rec["vae"] = {"s": r["first_wall"], "cpu": r["first_cpu"], "peak_gb": r["peak_gb"],
                          "grown_gb": (rss()["peak"] - before) / GB, "chunk": 16}
            rec["vae_out"] = r["result"]
            del vae
            gc.collect()
        if do_unet:
            reset_peak()
            t = time.perf_counter()
            unet = UNet3DConditionModel.from_pretrained(weights / "unet", torch_dtype=dtype).eval()
            rec["unet_load_s"] = time.perf_counter() - t
            rec["unet_load_peak_gb"] = rss()["peak"] / GB
            x, ts, e = unet_inputs(dtype, weights)
            r = timed(lambda: unet(x, ts, encoder_hidden_states=e).sample, steps)
            rec["unet"] = {k: v for k, v in r.items() if k != "result"}
            rec["unet_out"] = r["result"].float()
            del unet
            gc.collect()
        return rec

    # (c) the project's path: the same calls load_components / T2VGenerator make
    from diffusers import UNet3DConditionModel

    from plugins.modelscope_t2v.params import T2VParams
    from sdk.ml import accel
    from sdk.ml.device import configure_attention, place, resolve_dtype
    from sdk.ml.vae import decode_video, load_vae_folder
    from sdk.ml.weights_layout import load_diffusers_unet

    dtype = resolve_dtype("auto", cpu)
    rec["dtype"] = str(dtype).removeprefix("torch.")
    if do_vae:
        reset_peak()
        before = rss()["rss"]
        t = time.perf_counter()
        vae = place(load_vae_folder(weights / "vae"), cpu, dtype)
        rec["vae_load_s"] = time.perf_counter() - t
        lat = vae_latents()
        chunk = T2VParams.model_fields["decode_chunk_size"].default
        r = timed(lambda: decode_video(vae, lat, chunk)[0], 0)
        rec["vae"] = {"s": r["first_wall"], "cpu": r["first_cpu"], "peak_gb": r["peak_gb"],
                      "grown_gb": (rss()["peak"] - before) / GB, "chunk": chunk, "dtype": str(vae.dtype)}
        rec["vae_out"] = r["result"]
        del vae
        gc.collect()
    if do_unet:
        reset_peak()
        t = time.perf_counter()
        unet = place(load_diffusers_unet(weights, UNet3DConditionModel.from_config), cpu, dtype)
        rec["attention"] = configure_attention(unet, cpu)
        rec["unet_load_s"] = time.perf_counter() - t
        rec["unet_load_peak_gb"] = rss()["peak"] / GB
        rec["accel"] = accel.applied(unet)
        x, ts, e = unet_inputs(dtype, weights)
        x = x.contiguous()
        r = timed(lambda: unet(x, ts, encoder_hidden_states=e, return_dict=False)[0], steps)
        rec["unet"] = {k: v for k, v in r.items() if k != "result"}
        rec["unet_out"] = r["result"].float()
        fwd = vars(unet).get("forward")
        rec["calls"] = dict(getattr(fwd, "calls", {}))
        accel.release(unet)  # dynamo's caches would keep the frozen weights alive
        del unet, fwd
        gc.collect()
    return rec


def full_generation(weights: Path, steps: int) -> dict[str, Any]:
    """One generation through the real generator, timed end to end (load, compile, steps, decode, frames)."""
    from plugins.modelscope_t2v.params import T2VParams
    from plugins.modelscope_t2v.pipeline import T2VGenerator
    from sdk.context import JobContext, JobRequest
    from sdk.ml.process_memory import reset_peak, rss

    events: list[Any] = []
    stamps: list[float] = []

    def emit(ev: Any) -> None:
        events.append(ev)
        stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        ctx = JobContext("bench", emit, staging_dir=Path(tmp), device="cpu", dtype="auto")
        params = T2VParams(prompt="a red panda climbing a tree", num_frames=16, height=256, width=256,
                           num_inference_steps=steps)
        req = JobRequest("bench", "generate", "modelscope_t2v.t2v", params, seed=1, weights=weights)
        reset_peak()
        t0 = time.perf_counter()
        video = T2VGenerator().generate(ctx, req)
        total = time.perf_counter() - t0
    prog = [(s, e) for s, e in zip(stamps, events) if type(e).__name__ == "ProgressUpdated"]
    first = prog[0][0] - t0 if prog else float("nan")
    last = prog[-1][0] - t0 if prog else float("nan")
    step_s = (last - first) / (len(prog) - 1) if len(prog) > 1 else float("nan")
    return {"total_s": total, "to_first_step_s": first, "steady_step_s": step_s, "after_last_step_s": total - last,
            "frames": list(video.frames.shape), "peak_gb": rss()["peak"] / GB}


def load_once(plugin: str, folder: Path, precision: str) -> dict[str, Any]:
    """Load every component through the plugin's own ``load_components`` (mmap → assign → place), then read every
    weight once (an fp32 model is mapped lazily: this is when its pages come in). Peak RSS growth vs the weights'
    size at the chosen dtype."""
    import importlib

    import torch

    from sdk.ml.device import resolve_dtype
    from sdk.ml.process_memory import reset_peak, rss

    pipe = importlib.import_module(f"plugins.{plugin}.pipeline")
    import diffusers  # noqa: F401 - imports are not loading: done before the measurement
    import open_clip  # noqa: F401
    import transformers  # noqa: F401
    from diffusers import AutoencoderKL, I2VGenXLUNet, UNet3DConditionModel  # noqa: F401
    from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection  # noqa: F401

    cpu = torch.device("cpu")
    dtype = resolve_dtype(precision, cpu)
    w = pipe.detect_weights(folder)
    gc.collect()
    reset_peak()
    before = rss()["rss"]
    t = time.perf_counter()
    comps = pipe.load_components(_ctx(Path(tempfile.gettempdir())), w, cpu, dtype)
    load_s = time.perf_counter() - t
    after_load = rss()["peak"]
    mods = {k: v for k, v in comps.items() if isinstance(v, torch.nn.Module)}
    size = sum(p.numel() * p.element_size() for m in mods.values() for p in m.parameters())
    t = time.perf_counter()
    with torch.inference_mode():
        for m in mods.values():
            for p in m.parameters():
                p.float().sum()  # touch every page
    touch_s = time.perf_counter() - t
    peak = rss()["peak"]
    return {"plugin": plugin, "format": w.format, "dtype": str(dtype).removeprefix("torch."), "load_s": load_s,
            "touch_s": touch_s, "weights_gb": size / GB, "grown_load_gb": (after_load - before) / GB,
            "grown_gb": (peak - before) / GB, "ratio": (peak - before) / size, "peak_gb": peak / GB,
            "params": {k: sum(p.numel() for p in m.parameters()) for k, m in mods.items()}}


def load_table(specs: list[str], precisions: list[str]) -> str:
    """Each ``plugin:folder`` × precision loaded in its own fresh process (peaks are per process)."""
    lines = ["| weights | format | dtype | load s | + read all s | weights GB | peak growth GB | × weights | process peak GB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for spec in specs:
        plugin, folder = spec.split(":", 1)
        for prec in precisions:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--load-child", f"{plugin}:{folder}:{prec}"]
            out = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True)
            if out.returncode:
                lines.append(f"| {folder} | — | {prec} | failed: {out.stderr.strip().splitlines()[-1][:120]} |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            lines.append(f"| {Path(folder).name} | {r['format']} | {r['dtype']} | {r['load_s']:.1f} | {r['touch_s']:.1f} | "
                         f"{r['weights_gb']:.2f} | {r['grown_gb']:.2f} | {r['ratio']:.2f} | {r['peak_gb']:.2f} |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


def second_process(args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--weights", str(args.weights), "--cases", "c", "--no-vae",
           "--steps", "1", "--cache", args.cache, "--child-json"]
    env = dict(os.environ)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def report(recs: list[dict[str, Any]], extra: dict[str, Any]) -> str:
    by = {r["case"]: r for r in recs}
    names = {"a": "(a) stock diffusers fp32", "b": "(b) stock diffusers bf16", "c": "(c) project, auto"}
    lines = []
    if any("unet" in r for r in recs):
        ref = by.get("b", {}).get("unet")
        lines += ["UNet, one CFG step (batch 2, 16 f, 256²):", "",
                  "| path | dtype | s/step wall | CPU-s/step | first call s | load s | peak RSS GB | RSS after GB | speed-up vs (b) wall / CPU |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for c in "abc":
            r = by.get(c)
            if not r or "unet" not in r:
                continue
            u = r["unet"]
            ratio = f"{ref['wall'] / u['wall']:.2f}× / {ref['cpu'] / u['cpu']:.2f}×" if ref else "—"
            lines.append(f"| {names[c]} | {r['dtype']} | {u['wall']:.1f} | {u['cpu']:.1f} | {u['first_wall']:.1f} | "
                         f"{r['unet_load_s']:.1f} | {u['peak_gb']:.2f} | {u['rss_gb']:.2f} | {ratio} |")
        if "c" in by and "accel" in by["c"]:
            lines.append(f"\n(c) fast path: {by['c']['accel'] or 'none'}; attention {by['c'].get('attention')}; "
                         f"calls {by['c'].get('calls')}")
        for c in "bc":
            if c in by and "a" in by and "unet_out" in by[c] and "unet_out" in by["a"]:
                lines.append(f"UNet output {names[c]} vs (a): relative error {_rel(by['a']['unet_out'], by[c]['unet_out']):.2e}")
    if any("vae" in r for r in recs):
        ref = by.get("b", {}).get("vae")
        lines += ["", "VAE decode of 16 frames 32² → 256²:", "",
                  "| path | dtype | chunk | s wall | CPU-s | peak RSS GB (process) | grown GB | vs (b) wall / CPU |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in "abc":
            r = by.get(c)
            if not r or "vae" not in r:
                continue
            v = r["vae"]
            ratio = f"{ref['s'] / v['s']:.2f}× / {ref['cpu'] / v['cpu']:.2f}×" if ref else "—"
            lines.append(f"| {names[c]} | {v.get('dtype', r['dtype'])} | {v['chunk']} | {v['s']:.1f} | {v['cpu']:.1f} | "
                         f"{v['peak_gb']:.2f} | {v['grown_gb']:.2f} | {ratio} |")
        for c in "bc":
            if c in by and "a" in by and "vae_out" in by[c] and "vae_out" in by["a"]:
                lines.append(f"VAE frames {names[c]} vs (a): PSNR {_psnr(by['a']['vae_out'], by[c]['vae_out']):.1f} dB")
    for k, v in extra.items():
        lines.append(f"{k}: {v}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, default=Path("/work/realsize/t2v-diffusers"))
    ap.add_argument("--write", action="store_true", help="write the real-size twin if the folder is missing")
    ap.add_argument("--steps", type=int, default=2, help="timed CFG steps per case after the first call")
    ap.add_argument("--cases", default="abc", help="which of a, b, c to run, in this order")
    ap.add_argument("--no-vae", action="store_true")
    ap.add_argument("--no-unet", action="store_true")
    ap.add_argument("--cache", default="", help="compile cache folder (default: a fresh one: cold compile)")
    ap.add_argument("--second-process", action="store_true", help="then run (c) in a new process on the same cache")
    ap.add_argument("--full", action="store_true", help="finally, one 50-step generation through T2VGenerator")
    ap.add_argument("--full-steps", type=int, default=50)
    ap.add_argument("--full-only", action="store_true", help="only the full generation (this process)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--load", action="append", default=[], metavar="PLUGIN:FOLDER",
                    help="only measure loading these folders (e.g. modelscope_t2v:/work/realsize/t2v-vgen), "
                         "each precision in its own process")
    ap.add_argument("--load-precisions", default="fp32,bf16")
    ap.add_argument("--child-json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--load-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load_child:
        plugin, folder, prec = args.load_child.rsplit(":", 2)
        print(json.dumps(load_once(plugin, Path(folder), prec)))
        return
    if args.load:
        print(load_table(args.load, args.load_precisions.split(",")))
        return
    if not args.cache:
        args.cache = tempfile.mkdtemp(prefix="vgen-compile-")
        sys.argv += ["--cache", args.cache]
    reexec_with_worker_env(args.cache)

    import torch

    from sdk.ml.accel import describe_cpu

    if not (args.weights / "unet").is_dir():
        if not args.write:
            sys.exit(f"No real-size twin at {args.weights}; run with --write (writes ~7 GB) or give --weights.")
        from plugins.modelscope_t2v.tiny import make_tiny_weights

        t = time.perf_counter()
        make_tiny_weights(args.weights, "diffusers", size="real")
        print(f"wrote the real-size twin in {time.perf_counter() - t:.0f} s", flush=True)
    if args.full_only:
        full = full_generation(args.weights, args.full_steps)
        print(json.dumps(full))
        return
    from sdk.ml.process_memory import trim

    recs = []
    for case in args.cases:
        t = time.perf_counter()
        recs.append(run_case(case, args.weights, args.steps, not args.no_vae, not args.no_unet))
        gc.collect()
        trim()  # the worker's malloc settings keep freed memory: give it back before the next case
        if not args.child_json:
            print(f"case {case} done in {time.perf_counter() - t:.0f} s", flush=True)
    if args.child_json:
        r = recs[0]
        print(json.dumps({"first_wall": r["unet"]["first_wall"], "first_cpu": r["unet"]["first_cpu"],
                          "wall": r["unet"]["wall"], "cpu": r["unet"]["cpu"]}))
        return
    extra: dict[str, Any] = {"cpu": describe_cpu(), "torch": torch.__version__,
                             "malloc env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
                             "compile cache": args.cache}
    c = next((r for r in recs if r["case"] == "c" and "unet" in r), None)
    if c is not None and c.get("accel", {}).get("compile"):
        extra["compile, first process (first call − steady call), s"] = round(c["unet"]["first_wall"] - c["unet"]["wall"], 1)
    outs = {r["case"]: r for r in recs}
    table = report(recs, {})
    print(table, flush=True)  # now: the second process and the full run take long
    for r in recs:  # free the models' outputs before a second process or the full run
        r.pop("unet_out", None)
        r.pop("vae_out", None)
    gc.collect()
    if args.second_process and c is not None and c.get("accel", {}).get("compile"):
        sec = second_process(args)
        extra["compile, second process on the same cache (first call − steady call), s"] = round(
            sec["first_wall"] - sec["wall"], 1)
        extra["second process first call s (wall, CPU)"] = (round(sec["first_wall"], 1), round(sec["first_cpu"], 1))
    if args.full:  # in a fresh process, as a worker would run it
        cmd = [sys.executable, str(Path(__file__).resolve()), "--weights", str(args.weights), "--cache", args.cache,
               "--full-only", "--full-steps", str(args.full_steps)]
        full = json.loads(subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True,
                                         check=True).stdout.strip().splitlines()[-1])
        extra[f"full {args.full_steps}-step generation 16×256² (T2VGenerator.generate, cold model cache)"] = (
            f"{full['total_s']:.0f} s = {full['total_s'] / 60:.1f} min (to first step {full['to_first_step_s']:.0f} s, "
            f"steady {full['steady_step_s']:.1f} s/step, decode + frames {full['after_last_step_s']:.0f} s, "
            f"peak {full['peak_gb']:.2f} GB)")
    text = "\n".join(f"{k}: {v}" for k, v in extra.items())
    print(text)
    if args.json:
        clean = [{k: v for k, v in r.items() if not k.endswith("_out")} for r in outs.values()]
        args.json.write_text(json.dumps({"cases": clean, "extra": {k: str(v) for k, v in extra.items()}}, indent=2))


if __name__ == "__main__":
    main()
