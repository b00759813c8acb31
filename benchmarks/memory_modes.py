"""Peak memory of one real-size job in each memory mode, on this machine (CPU unless CUDA is there).

    python benchmarks/memory_modes.py --weights DIR [--steps 2] [--frames 16] [--size 256] [--precision auto]
        [--modes none,balanced,low,minimum] [--eager]

Each mode runs in a fresh process (peak RSS is per process: ``VmHWM``), through the generator the worker runs, with
the mode applied by ``sdk.ml.memory`` as in a real job. Make the weights once with
``vgen models make-tiny modelscope_t2v.ms_1_7b DIR --size real`` (random weights at the released dimensions).
Prints a table: mode, peak RSS (CPU) or peak CUDA memory, seconds per step, decode seconds, and the frames' largest
difference from mode ``none`` (the modes compute the same function; VAE tiling only differs above 512 px).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODES = ("none", "balanced", "low", "minimum")

CHILD = r'''
import json, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
from sdk.context import JobContext, JobRequest, ModelCache
from sdk.params import validate_params
from plugins.modelscope_t2v.params import T2VParams
from plugins.modelscope_t2v.pipeline import T2VGenerator
from sdk.ml.runtime import resolve_precision
from sdk.ml.device import resolve_device
import torch

weights, mode, steps, frames, size, precision, out = sys.argv[2:9]
dev = resolve_device("auto")
dtype = str(resolve_precision(precision, dev)).removeprefix("torch.")
marks = []
def on_event(e):
    if getattr(e, "type", "") == "progress":
        marks.append(time.perf_counter())
ctx = JobContext("bench", on_event, staging_dir=Path(out) / mode, models=ModelCache(), device=str(dev), dtype=dtype,
                 memory_mode=mode)
params = validate_params(T2VParams, {"prompt": "a red fox running in the snow", "num_frames": int(frames),
                                     "height": int(size), "width": int(size), "num_inference_steps": int(steps)})
t0 = time.perf_counter()
video = T2VGenerator().generate(ctx, JobRequest("bench", "generate", "t2v", params, seed=1, weights=Path(weights)))
end = time.perf_counter()
ctx.finish()
np.save(Path(out) / f"{mode}.npy", video.frames)
status = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines())
steps_s = [b - a for a, b in zip(marks, marks[1:])]
print(json.dumps({"mode": mode, "dtype": dtype, "device": str(dev),
                  "peak_rss_gb": int(status["VmHWM"].split()[0]) / 2**20,
                  "peak_cuda_gb": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None,
                  "s_per_step": sorted(steps_s)[len(steps_s) // 2] if steps_s else None,
                  "decode_s": end - marks[-1] if marks else None, "total_s": end - t0,
                  "encoders_freed": ctx.runtime.get("encoders_freed", False)}))
'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--eager", action="store_true",
                    help="VGEN_ACCEL=0: no compile (each mode's process would otherwise compile the UNet again)")
    a = ap.parse_args()
    from sdk.executor import worker_env

    env = worker_env(device="auto")  # the environment the worker runs in (malloc tuning)
    if a.eager:
        env["VGEN_ACCEL"] = "0"
    import numpy as np

    rows = []
    with tempfile.TemporaryDirectory() as out:
        for mode in a.modes.split(","):
            res = subprocess.run([sys.executable, "-c", CHILD, str(REPO), str(a.weights), mode, str(a.steps),
                                  str(a.frames), str(a.size), a.precision, out], capture_output=True, text=True,
                                 env=env)
            if res.returncode != 0:
                print(f"{mode}: FAILED\n{res.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        ref = np.load(Path(out) / "none.npy") if (Path(out) / "none.npy").exists() else None
        for r in rows:
            frames = np.load(Path(out) / f"{r['mode']}.npy")
            r["max_diff"] = int(np.abs(frames.astype(int) - ref.astype(int)).max()) if ref is not None else None
    print(f"{a.frames} frames {a.size}², {a.steps} CFG steps, {rows[0]['dtype'] if rows else '?'} on "
          f"{rows[0]['device'] if rows else '?'}{', eager (VGEN_ACCEL=0)' if a.eager else ''}")
    print("| memory mode | peak RSS GB | peak CUDA GB | s/step | decode s | encoders freed | max diff vs none |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cuda = f"{r['peak_cuda_gb']:.2f}" if r["peak_cuda_gb"] is not None else "-"
        print(f"| {r['mode']} | {r['peak_rss_gb']:.2f} | {cuda} | {r['s_per_step']:.1f} | {r['decode_s']:.1f} | "
              f"{r['encoders_freed']} | {r['max_diff']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
