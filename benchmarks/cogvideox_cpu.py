"""CogVideoX-2B at real size on the CPU, end to end through ``cogvideox.t2v``: bf16 against int8, side by side.

Writes CogVideoX-2B's real-size twin once (T5-XXL, the 30-layer transformer, the 3-D VAE; random bf16 weights,
about 13 GB on disk; ``--weights`` reuses one), then renders the same short clip in each precision, each in a child
process of its own (so peak RSS is that precision's alone), through the generator the worker runs: seconds per
denoising step (median after the first), seconds for the whole job (load, T5, steps, decode), peak RSS and the
bytes the quantized transformer holds. The clip is reduced (default 9 frames at 160×96, 3 steps) so a run takes
minutes on 2 cores: the real 49×720×480 clip is 17,550 video tokens against 90 here, and a step would take tens of
minutes. The weights are real-size, so load time and memory are what a real 2B job pays on this machine.

    nice -n 10 .venv/bin/python benchmarks/cogvideox_cpu.py [--weights DIR] [--keep] [--steps 3]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRECISIONS = ("bf16", "int8")


def child(weights: Path, precision: str, frames: int, height: int, width: int, steps: int) -> dict:
    import resource

    import torch

    from plugins.cogvideox.params import CogVideoXParams
    from plugins.cogvideox.pipeline import CogVideoXGenerator
    from sdk.context import JobContext, JobRequest, ModelCache

    marks: list[float] = []

    def on_event(e) -> None:
        if getattr(e, "type", "") == "progress":
            marks.append(time.perf_counter())

    params = CogVideoXParams(prompt="a paper boat drifting down a stream", num_frames=frames, height=height,
                             width=width, num_inference_steps=steps, fps=8, use_dynamic_cfg=False)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = JobContext("bench", on_event, staging_dir=Path(tmp), models=ModelCache(64 * 2**30), device="cpu",
                         dtype=torch.bfloat16, memory_mode="none",
                         quantization=precision if precision == "int8" else "none")
        try:
            video = CogVideoXGenerator().generate(ctx, JobRequest("bench", "generate", "cogvideox.t2v", params,
                                                                  seed=1, weights=weights))
        finally:
            ctx.finish()
    total = time.perf_counter() - t0
    gaps = sorted(b - a for a, b in zip(marks, marks[1:]))
    return {"precision": precision, "s_per_step": gaps[len(gaps) // 2] if gaps else float("nan"),
            "job_s": total, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "frames": int(video.frames.shape[0]), "quantized": ctx.runtime.get("quantized")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, help="a CogVideoX-2B folder (real-size twin or the real weights)")
    ap.add_argument("--keep", action="store_true", help="keep the twin written to a temporary folder")
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.weights, a.child, a.frames, a.height, a.width, a.steps)))
        return
    weights, made = a.weights, None
    if weights is None:
        from sdk.ml.cogvideox import write_twin

        made = Path(tempfile.mkdtemp(prefix="cog2b-real-"))
        t = time.perf_counter()
        weights = write_twin(made / "cogvideox-2b", variant="2b", size="real")
        print(f"wrote the real-size CogVideoX-2B twin in {time.perf_counter() - t:.0f} s: {weights}")
    size = sum(f.stat().st_size for f in weights.rglob("*") if f.is_file())
    print(f"weights: {size / 2**30:.1f} GB on disk; clip {a.frames} frames at {a.width}×{a.height}, {a.steps} steps, "
          "memory mode none")
    rows = []
    try:
        for precision in PRECISIONS:
            out = subprocess.run([sys.executable, __file__, "--child", precision, "--weights", str(weights),
                                  "--frames", str(a.frames), "--height", str(a.height), "--width", str(a.width),
                                  "--steps", str(a.steps)], capture_output=True, text=True)
            if out.returncode:
                print(f"{precision}: FAILED\n{out.stderr[-2000:]}")
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        if made is not None and not a.keep:
            shutil.rmtree(made, ignore_errors=True)
    print(f"{'precision':>9} | {'s/step':>7} | {'job s':>6} | {'peak RSS':>8} | quantized transformer")
    for r in rows:
        q = r["quantized"]
        qtext = f"{q['layers']} Linear layers, {q['weights_bytes'] / 2**30:.2f} GB" if q else "-"
        print(f"{r['precision']:>9} | {r['s_per_step']:7.2f} | {r['job_s']:6.1f} | {r['peak_rss_gb']:6.2f} GB | {qtext}")
    if len(rows) == 2:
        print(f"int8 / bf16: {rows[1]['s_per_step'] / rows[0]['s_per_step']:.2f}× the time per step, "
              f"{rows[1]['peak_rss_gb'] / rows[0]['peak_rss_gb']:.2f}× the peak RSS")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
