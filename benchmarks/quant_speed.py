"""Seconds per denoiser step and memory: int8 (weight-only, torchao) against bf16 and fp32, side by side in one run.

Two models, each precision in a fresh child process (so each peak RSS is its own):

- ``tiny``: the tiny ModelScope T2V twin's UNet (``plugins.modelscope_t2v.tiny``), batch 2 (guidance),
  at ``--tiny-frames`` × ``--tiny-size``².
- ``cogvideox-2b``: a real-size CogVideoX-2B transformer (diffusers ``CogVideoXTransformer3DModel`` with the hub's
  ``transformer/config.json`` for THUDM/CogVideoX-2b: 30 layers, 30 heads × 64, text_embed_dim 4096; 1.69 B
  parameters) with random weights, batch 1, at a reduced token count: ``--cog-frames`` latent frames of
  ``--cog-latent``² latents (2×2 patches) plus the 226 text tokens the model always takes. The real 49 × 480 × 720
  clip is 13 latent frames of 60 × 90, i.e. 17,550 video tokens: the CPU timing is about the weights' arithmetic,
  not a real render.

Every model runs eagerly (``VGEN_ACCEL`` compile off) so the precisions are compared on the same code path; the int8
model is the bf16 one with :func:`sdk.ml.quantize.quantize_module` applied, as the worker does for a job with
``precision=int8``. Reported per run: s/step (median of ``--steps`` after one warm-up step, and the best step: on a
CPU shared with other work the best is the least disturbed), the weights' bytes
(:func:`sdk.ml.quantize.weight_bytes`), RSS after the model is ready, peak RSS, and the output's relative error
against fp32 (tiny only: the children build the same weights from the same file). Then one more child holds the bf16
and the int8 model together and alternates their steps: on a CPU shared with other work, separate runs minutes apart
see different loads (measured: 3× apart), alternating steps see the same.

    nice -n 10 .venv/bin/python benchmarks/quant_speed.py [--only tiny|cogvideox-2b] [--steps 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRECISIONS = ("fp32", "bf16", "int8")


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _build(model: str, precision: str, args: argparse.Namespace):
    """(module, call) for one child: the model in the precision's dtype, quantized for int8."""
    import torch

    from sdk.ml import quantize

    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    g = torch.Generator().manual_seed(0)
    if model == "tiny":
        from diffusers import UNet3DConditionModel

        unet = UNet3DConditionModel.from_pretrained(Path(args.tiny_weights) / "unet").to(dtype).eval()
        x = torch.randn(2, 4, args.tiny_frames, args.tiny_size // 8, args.tiny_size // 8, generator=g).to(dtype)
        text = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g).to(dtype)

        def call() -> torch.Tensor:
            return unet(x, torch.tensor([500]), encoder_hidden_states=text).sample
        module = unet
    else:
        from diffusers import CogVideoXTransformer3DModel

        torch.manual_seed(0)
        torch.set_default_dtype(dtype)  # built in its dtype: bf16 never holds an fp32 copy
        from sdk.ml.cogvideox_twin import HUB_2B_TRANSFORMER  # the hub's transformer/config.json

        module = CogVideoXTransformer3DModel(**HUB_2B_TRANSFORMER).eval()
        torch.set_default_dtype(torch.float32)
        lat = args.cog_latent
        x = torch.randn(1, args.cog_frames, 16, lat, lat, generator=g).to(dtype)
        text = torch.randn(1, 226, 4096, generator=g).to(dtype)

        def call() -> torch.Tensor:
            return module(hidden_states=x, encoder_hidden_states=text, timestep=torch.tensor([500]),
                          return_dict=False)[0]
    if precision == "int8":
        quantize.quantize_module(module, "int8", "cpu")
    return module, call


def child(model: str, precision: str, args: argparse.Namespace) -> dict:
    import torch

    from sdk.ml import quantize

    t0 = time.perf_counter()
    module, call = _build(model, precision, args)
    build_s = time.perf_counter() - t0
    ready_rss = rss()
    times = []
    with torch.no_grad():
        for i in range(args.steps + 1):
            t0 = time.perf_counter()
            out = call()
            if i:  # the first call warms up
                times.append(time.perf_counter() - t0)
    times.sort()
    result = {"model": model, "precision": precision, "build_s": round(build_s, 1),
              "s_per_step": round(statistics.median(times), 3), "step_times": [round(t, 3) for t in times],
              "weights_bytes": quantize.weight_bytes(module), "rss_ready_bytes": ready_rss,
              "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
              "threads": torch.get_num_threads(), "quantized_layers": quantize.quantized_layers(module)}
    if args.out_tensor:
        torch.save(out.float(), args.out_tensor)
    return result


def pair(model: str, args: argparse.Namespace) -> dict:
    """bf16 and int8 in one process, their steps alternating, so both see the same load on a shared CPU."""
    import torch

    calls = {p: _build(model, p, args)[1] for p in ("bf16", "int8")}
    times: dict[str, list[float]] = {p: [] for p in calls}
    with torch.no_grad():
        for p, call in calls.items():
            call()  # warm-up
        for _ in range(args.steps):
            for p, call in calls.items():
                t0 = time.perf_counter()
                call()
                times[p].append(round(time.perf_counter() - t0, 3))
    return {"model": model, "alternating": times}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("tiny", "cogvideox-2b"), default=None)
    ap.add_argument("--steps", type=int, default=2, help="timed steps per real-size run, after one warm-up step")
    ap.add_argument("--tiny-steps", type=int, default=7, help="timed steps per tiny run (a shared CPU is noisy)")
    ap.add_argument("--tiny-frames", type=int, default=8)
    ap.add_argument("--tiny-size", type=int, default=64)
    ap.add_argument("--cog-frames", type=int, default=2, help="latent frames (4n+1 video frames → n+1)")
    ap.add_argument("--cog-latent", type=int, default=16, help="latent height = width (pixels / 8)")
    ap.add_argument("--json", default=None, help="write the results here too")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "PRECISION"), help=argparse.SUPPRESS)
    ap.add_argument("--tiny-weights", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out-tensor", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        out = pair(args.child[0], args) if args.child[1] == "pair" else child(args.child[0], args.child[1], args)
        print("RESULT " + json.dumps(out), flush=True)
        return 0

    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "VGEN_ACCEL": "0", "PYTHONPATH": path}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        from plugins.modelscope_t2v.tiny import make_tiny_weights

        tiny = make_tiny_weights(Path(tmp) / "tiny", "diffusers")
        models = [args.only] if args.only else ["tiny", "cogvideox-2b"]
        for model in models:
            for precision in (*PRECISIONS, "pair"):
                out_t = Path(tmp) / f"{model}-{precision}.pt"
                cmd = [sys.executable, __file__, "--child", model, precision, "--tiny-weights", str(tiny),
                       "--steps", str(args.tiny_steps if model == "tiny" else args.steps),
                       "--tiny-frames", str(args.tiny_frames), "--tiny-size", str(args.tiny_size),
                       "--cog-frames", str(args.cog_frames), "--cog-latent", str(args.cog_latent),
                       "--out-tensor", str(out_t)]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
                if proc.returncode or line is None:
                    print(f"{model} {precision} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
                    return 1
                row = json.loads(line[7:])
                if precision == "pair":
                    t = row["alternating"]
                    print(f"{model:<13} alternating in one process: bf16 {statistics.median(t['bf16']):.3f} s/step, "
                          f"int8 {statistics.median(t['int8']):.3f} s/step (medians; int8/bf16 "
                          f"×{statistics.median(t['int8']) / statistics.median(t['bf16']):.2f})", flush=True)
                    rows.append(row)
                    continue
                if model == "tiny":
                    import torch

                    ref = torch.load(Path(tmp) / f"{model}-fp32.pt", weights_only=True)
                    got = torch.load(out_t, weights_only=True)
                    row["rel_err_vs_fp32"] = round(float((got - ref).norm() / ref.norm()), 4)
                rows.append(row)
                print(_line(row), flush=True)
    tokens = args.cog_frames * (args.cog_latent // 2) ** 2 + 226
    print(f"cogvideox-2b: {args.cog_frames} latent frames × {args.cog_latent}² latents = {tokens - 226} video "
          f"tokens + 226 text tokens ({tokens} in all); tiny: {args.tiny_frames} frames × {args.tiny_size}² px, "
          "batch 2")
    for model in dict.fromkeys(r["model"] for r in rows):
        by = {r["precision"]: r for r in rows if r["model"] == model and "precision" in r}
        if {"bf16", "int8"} <= set(by):
            def best(p: str) -> float:
                return min(by[p]["step_times"])

            print(f"{model}: int8/bf16 time ×{by['int8']['s_per_step'] / by['bf16']['s_per_step']:.2f} (median) "
                  f"×{best('int8') / best('bf16'):.2f} (best); int8/fp32 ×{best('int8') / best('fp32'):.2f} (best); "
                  f"weights int8/bf16 ×{by['int8']['weights_bytes'] / by['bf16']['weights_bytes']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


def _line(r: dict) -> str:
    def gb(n: int) -> str:
        return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"

    err = f", rel. error vs fp32 {r['rel_err_vs_fp32']}" if "rel_err_vs_fp32" in r else ""
    return (f"{r['model']:<13} {r['precision']:<5} {r['s_per_step']:>8.3f} s/step "
            f"(best {min(r['step_times']):.3f})  weights "
            f"{gb(r['weights_bytes'])}  RSS ready {gb(r['rss_ready_bytes'])}  peak "
            f"{gb(r['peak_rss_bytes'])}  build {r['build_s']} s  ({r['quantized_layers']} int8 layers, "
            f"{r['threads']} threads){err}")


if __name__ == "__main__":
    sys.exit(main())
