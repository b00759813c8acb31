"""One command for a CUDA machine: the real-size twins of ModelScope T2V and I2VGen-XL rendered in every precision ×
memory mode, against stock diffusers on the same weights; SR600 upscaling 32 frames to 1280×720 in fp16 × low and
minimum (does it fit 24 GB?); then the tests marked ``gpu``. Prints one table.

    python scripts/gpu_check.py [--out DIR] [--steps 8] [--budget-s 470] [--skip-tests]

For each model it writes a real-size random twin (diffusers layout) once, then renders the same seed in fp32, fp16
and bf16 × memory modes none, balanced, low, minimum through the generator the worker runs (in-process, so CUDA
statistics are exact), and once through stock ``TextToVideoSDPipeline`` / ``I2VGenXLPipeline`` in fp16 loaded by
diffusers itself. Columns: seconds per denoising step (after one warm-up job per dtype), peak CUDA memory during
the job (models included), and the frames' largest difference from the fp32 / none render of the same model in
1/255 (random weights make noise, so this checks that modes and precisions compute the same function: a mode must
stay within the precision's own tolerance). Where xformers is installed, fp16 / none is rendered with it too.

Runs in ≲ 8 minutes on one H100/H200 with the default sizes; ``--budget-s`` stops starting new rows when time is
short (the table says which were skipped). Never run by CI: it needs CUDA.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PRECISIONS = ("fp32", "fp16", "bf16")
MODES = ("none", "balanced", "low", "minimum")
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
#: largest frame difference (in 1/255) from the fp32/none render that a precision may show on random weights
TOLERANCE = {"fp32": 2, "fp16": 24, "bf16": 48}


def _render(generator: Any, params: Any, weights: Path, cache: Any, *, dtype: str, mode: str, seed: int,
            inputs: dict[str, Any]) -> tuple[Any, float, int, int]:
    """(video, seconds per step, peak bytes, steps) of one job through the project's own generator."""
    import torch

    from sdk.context import JobContext, JobRequest

    steps: list[float] = []
    t_last = [0.0]

    def on_event(e: Any) -> None:
        if getattr(e, "type", "") == "progress":
            now = time.perf_counter()
            steps.append(now - t_last[0])
            t_last[0] = now

    with tempfile.TemporaryDirectory() as tmp:
        ctx = JobContext("gpu", on_event, staging_dir=Path(tmp), models=cache, device="cuda", dtype=dtype,
                         memory_mode=mode)
        req = JobRequest("gpu", "generate", "check", params, seed=seed, inputs=inputs, weights=weights)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t_last[0] = time.perf_counter()
        try:
            video = generator.generate(ctx, req)
        finally:
            ctx.finish()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    per_step = sorted(steps[1:] or steps)[len(steps[1:] or steps) // 2] if steps else float("nan")
    return video, per_step, peak, len(steps)


def _stock(load: Callable[[], Any], call: Callable[[Any], Any], steps: int) -> tuple[Any, float, int]:
    import torch

    pipe = load().to("cuda")
    marks: list[float] = []

    def cb(_pipe: Any, _i: int, _t: Any, kw: dict[str, Any]) -> dict[str, Any]:
        torch.cuda.synchronize()
        marks.append(time.perf_counter())
        return kw

    torch.cuda.reset_peak_memory_stats()
    out = call(pipe, cb)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    gaps = [b - a for a, b in zip(marks, marks[1:])]
    per_step = sorted(gaps)[len(gaps) // 2] if gaps else float("nan")
    del pipe
    torch.cuda.empty_cache()
    return out, per_step, peak


def _max_diff(a: Any, b: Any) -> int:
    import numpy as np

    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def check_model(name: str, weights: Path, generator: Any, params_model: Any, params: dict[str, Any],
                inputs: dict[str, Any], stock: tuple[Callable[[], Any], Callable[[Any, Any], Any]], deadline: float,
                rows: list[list[str]]) -> None:
    import torch

    from sdk.context import ModelCache
    from sdk.params import validate_params

    model = validate_params(params_model, params, spec_id=name)
    reference = None
    for precision in PRECISIONS:
        cache = ModelCache()
        for mode in MODES:
            label = [name, precision, mode]
            if time.monotonic() > deadline:
                rows.append(label + ["skipped (time budget)", "", ""])
                continue
            try:
                if mode == "none":  # warm-up: load and first kernels are not a step's cost
                    _render(generator, model, weights, cache, dtype=DTYPES[precision], mode=mode, seed=1,
                            inputs=inputs)
                video, s_step, peak, n = _render(generator, model, weights, cache, dtype=DTYPES[precision], mode=mode,
                                                 seed=1, inputs=inputs)
            except Exception as exc:  # a failing row is reported, the table goes on
                rows.append(label + [f"FAILED: {type(exc).__name__}: {str(exc)[:60]}", "", ""])
                torch.cuda.empty_cache()
                continue
            if reference is None:
                reference = video.frames
            diff = _max_diff(video.frames, reference)
            ok = "ok" if diff <= TOLERANCE[precision] else f"OVER {TOLERANCE[precision]}"
            rows.append(label + [f"{s_step:.3f}", f"{peak / 2**30:.2f}", f"{diff} ({ok})"])
        del cache
        torch.cuda.empty_cache()
    if time.monotonic() < deadline:
        try:
            out, s_step, peak = _stock(*stock)
            rows.append([name, "fp16", "stock diffusers", f"{s_step:.3f}", f"{peak / 2**30:.2f}", "-"])
        except Exception as exc:
            rows.append([name, "fp16", "stock diffusers", f"FAILED: {type(exc).__name__}: {str(exc)[:60]}", "", ""])


def sr600_rows(out: Path, steps: int, deadline: float, rows: list[list[str]]) -> None:
    """SR600's real-size twin upscaling 32 frames to 1280×720 in fp16 × low and minimum (``steps`` sampling steps,
    the inversion's stride following): peak CUDA memory against the 24 GB the issue asks to fit, and the
    preflight's estimate for the same job (the job log's number) beside it."""
    import numpy as np
    import torch

    from plugins.sr600.params import SR600Params
    from plugins.sr600.pipeline import SR600Generator
    from plugins.sr600.tiny import make_tiny_weights as sr_twin
    from sdk.context import ModelCache
    from sdk.inputs import VideoInput
    from sdk.outputs import write_output
    from sdk.video import Video

    weights = out / "sr600-real"
    if not any(weights.glob("sr_step*.pth")):
        t = time.monotonic()
        sr_twin(weights, size="real")
        print(f"wrote the real-size SR600 twin in {time.monotonic() - t:.0f} s")
    frames = (np.random.default_rng(0).random((32, 256, 448, 3)) * 255).astype(np.uint8)
    paths = write_output(out / "sr600-source", Video(frames, fps=8), {"gpu_check": True})
    source = VideoInput(path=paths["video"], num_frames=32, width=448, height=256, fps=8, frames_dir=paths["frames"])
    params = SR600Params(prompt="a boat on a lake", num_inference_steps=steps)
    for mode in ("low", "minimum"):
        label = ["sr600 32×1280×720", "fp16", mode]
        if time.monotonic() > deadline:
            rows.append(label + ["skipped (time budget)", "", ""])
            continue
        try:
            _, s_step, peak, _ = _render(SR600Generator(), params, weights, ModelCache(), dtype="float16", mode=mode,
                                         seed=1, inputs={"video": source})
            fits = "fits 24 GB" if peak < 24 * 2**30 else "OVER 24 GB"
            rows.append(label + [f"{s_step:.3f}", f"{peak / 2**30:.2f}", fits])
        except Exception as exc:  # a failing row is reported, the table goes on
            rows.append(label + [f"FAILED: {type(exc).__name__}: {str(exc)[:60]}", "", ""])
        torch.cuda.empty_cache()


#: CogVideoX-2B rows: (precision, memory mode); int8 comes from sdk.ml.quantize where the tree has it
COGVIDEOX_ROWS = (("bf16", "balanced"), ("bf16", "low"), ("int8", "balanced"), ("int8", "low"))


def cogvideox_rows(out: Path, steps: int, deadline: float, rows: list[list[str]]) -> None:
    """CogVideoX-2B's real-size twin (T5-XXL, the 30-layer transformer, the 3-D VAE; bf16 on disk) rendering its
    default clip, 49 frames at 720×480, in bf16 and int8 × model (balanced) and block (low) offload: seconds per
    step and peak CUDA memory (the guide's claim: about 10 GB in bf16, 4 GB in int8, with offload). int8 asks the
    job context for ``quantization="int8"``; a tree without it shows the row as failed and goes on."""
    import torch

    from plugins.cogvideox.params import CogVideoXParams
    from plugins.cogvideox.pipeline import CogVideoXGenerator
    from sdk.context import JobContext, JobRequest, ModelCache
    from sdk.ml.cogvideox import write_twin

    weights = out / "cogvideox-2b-real"
    if not (weights / "vgen_studio.json").exists():
        t = time.monotonic()
        write_twin(weights, variant="2b", size="real")
        print(f"wrote the real-size CogVideoX-2B twin in {time.monotonic() - t:.0f} s")
    params = CogVideoXParams(prompt="a paper boat drifting down a stream", num_frames=49, height=480, width=720,
                             num_inference_steps=steps, fps=8, use_dynamic_cfg=False)
    for precision, mode in COGVIDEOX_ROWS:
        label = ["cogvideox-2b 49×720×480", precision, mode]
        if time.monotonic() > deadline:
            rows.append(label + ["skipped (time budget)", "", ""])
            continue
        marks: list[float] = []

        def on_event(e: Any) -> None:
            if getattr(e, "type", "") == "progress":
                marks.append(time.perf_counter())

        extra = {"quantization": precision} if precision == "int8" else {}
        try:
            with tempfile.TemporaryDirectory() as tmp:
                ctx = JobContext("gpu-cog", on_event, staging_dir=Path(tmp), models=ModelCache(), device="cuda",
                                 dtype="bfloat16", memory_mode=mode, **extra)
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                try:
                    video = CogVideoXGenerator().generate(ctx, JobRequest("gpu-cog", "generate", "cogvideox.t2v",
                                                                          params, seed=1, weights=weights))
                finally:
                    ctx.finish()
                torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated()
                quantized = ctx.runtime.get("quantized", "-") if extra else "-"
            gaps = sorted(b - a for a, b in zip(marks, marks[1:]))
            s_step = gaps[len(gaps) // 2] if gaps else float("nan")
            rows.append(label + [f"{s_step:.3f}", f"{peak / 2**30:.2f}",
                                 f"{video.frames.shape[0]} frames; quantized: {quantized}"])
        except Exception as exc:  # a failing row is reported, the table goes on (int8 on a tree without it)
            rows.append(label + [f"FAILED: {type(exc).__name__}: {str(exc)[:60]}", "", ""])
        torch.cuda.empty_cache()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "vgen-gpu-check")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--budget-s", type=float, default=470.0, help="stop starting rows after this many seconds")
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--skip-sr600", action="store_true", help="leave out the SR600 720p × 32-frame rows")
    ap.add_argument("--skip-cogvideox", action="store_true", help="leave out the CogVideoX-2B rows")
    ap.add_argument("--only-cogvideox", action="store_true", help="only the CogVideoX-2B rows (then the gpu tests)")
    a = ap.parse_args()
    t0 = time.monotonic()
    deadline = t0 + a.budget_s

    import torch

    if not torch.cuda.is_available():
        print("No CUDA device: this check needs one (it is never run by CI).")
        return 2
    from sdk.ml.probe import describe

    info = describe("cuda")
    print(f"# GPU check on {info['device_name']} ({info['total_bytes'] / 2**30:.0f} GB), "
          f"torch {info['versions']['torch']}, diffusers {info['versions'].get('diffusers')}")
    a.out.mkdir(parents=True, exist_ok=True)
    rows: list[list[str]] = []

    if a.only_cogvideox:
        cogvideox_rows(a.out, a.steps, deadline, rows)
        return _report(rows, t0, a.skip_tests)

    # -- ModelScope T2V ------------------------------------------------------------------------------------------
    from plugins.modelscope_t2v.params import T2VParams
    from plugins.modelscope_t2v.pipeline import T2VGenerator
    from plugins.modelscope_t2v.tiny import make_tiny_weights as t2v_twin

    t2v = a.out / "t2v-real"
    if not (t2v / "model_index.json").exists():
        t = time.monotonic()
        t2v_twin(t2v, "diffusers", size="real")
        print(f"wrote the real-size T2V twin in {time.monotonic() - t:.0f} s")
    t2v_params = {"prompt": "a red fox running in the snow", "num_frames": 16, "height": 256, "width": 256,
                  "num_inference_steps": a.steps, "guidance_scale": 9.0}

    def t2v_stock_load() -> Any:
        from diffusers import TextToVideoSDPipeline

        return TextToVideoSDPipeline.from_pretrained(t2v, torch_dtype=torch.float16)

    def t2v_stock_call(pipe: Any, cb: Any) -> Any:
        return pipe(t2v_params["prompt"], num_frames=16, height=256, width=256, num_inference_steps=a.steps,
                    guidance_scale=9.0, generator=torch.Generator("cpu").manual_seed(1), output_type="np",
                    callback_on_step_end=cb)

    check_model("t2v 16×256²", t2v, T2VGenerator(), T2VParams, t2v_params, {}, (t2v_stock_load, t2v_stock_call), deadline, rows)

    # -- I2VGen-XL ------------------------------------------------------------------------------------------------
    from PIL import Image

    from plugins.i2vgen_xl.params import I2VParams
    from plugins.i2vgen_xl.pipeline import I2VGenerator
    from plugins.i2vgen_xl.tiny import make_tiny_weights as i2v_twin

    i2v = a.out / "i2v-real"
    if not (i2v / "model_index.json").exists():
        t = time.monotonic()
        i2v_twin(i2v, "diffusers", size="real")
        print(f"wrote the real-size I2VGen-XL twin in {time.monotonic() - t:.0f} s")
    image = a.out / "first-frame.png"
    Image.new("RGB", (448, 256), (180, 120, 40)).save(image)
    i2v_params = {"prompt": "a boat on a lake", "num_frames": 16, "height": 256, "width": 448,
                  "num_inference_steps": a.steps}

    def i2v_stock_load() -> Any:
        from diffusers import I2VGenXLPipeline

        return I2VGenXLPipeline.from_pretrained(i2v, torch_dtype=torch.float16)

    def i2v_stock_call(pipe: Any, cb: Any) -> Any:
        return pipe(i2v_params["prompt"], image=Image.open(image), num_frames=16, height=256, width=448,
                    num_inference_steps=a.steps, generator=torch.Generator("cpu").manual_seed(1), output_type="np",
                    callback_on_step_end=cb)

    check_model("i2v 16×448×256", i2v, I2VGenerator(), I2VParams, i2v_params, {"image": image}, (i2v_stock_load, i2v_stock_call),
                deadline, rows)

    # -- SR600 at 1280×720 × 32 frames: fits a 24 GB GPU in memory_mode=low? (issue 13) -------------------------
    if not a.skip_sr600:
        sr600_rows(a.out, a.steps, deadline, rows)

    # -- CogVideoX-2B, real size: bf16 and int8 with offload (issue 15) ------------------------------------------
    if not a.skip_cogvideox:
        cogvideox_rows(a.out, a.steps, deadline, rows)

    # -- xformers vs SDPA ---------------------------------------------------------------------------------------
    try:
        import xformers  # noqa: F401

        rows.append(["t2v 16×256²", "fp16", "none, xformers", "see the fp16/none row: xformers is used when "
                     "importable (runtime.attention in meta.json)", "", ""])
    except ImportError:
        rows.append(["-", "-", "xformers", "not installed: SDPA only", "", ""])
    return _report(rows, t0, a.skip_tests)


def _report(rows: list[list[str]], t0: float, skip_tests: bool) -> int:
    print()
    print("| model | precision | memory mode | s/step | peak GB | max diff vs fp32/none (1/255) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nTolerance per precision (1/255): {TOLERANCE}. Table took {time.monotonic() - t0:.0f} s.")

    if not skip_tests:
        env = dict(os.environ, VGEN_GPU_CHECK="1")
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                              str(REPO / "tests")], cwd=REPO, env=env)
        return res.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
