"""Will ``sr600.upscale`` (32 frames at 1280×720) fit a 24 GB GPU in ``memory_mode=low``? The preflight's answer,
and what the SR600 UNet's activations really weigh at 720p on this machine.

    python benchmarks/sr600_memory.py --weights DIR [--gpu-gb 24] [--precision fp16]
    python benchmarks/sr600_memory.py --weights DIR --measure [--frames 2] [--sizes 272x256,720x1280]

Make the weights once (random values at the released dimensions, ~10 GB, never committed):
``vgen models make-tiny sr600.sr600 DIR --size real``. Run under ``nice -n 10``.

1. **Preflight** (arithmetic, no GPU needed): :func:`sdk.ml.preflight.components` reads the twin's tensor metadata
   (UNet ``.pth``, the text tower of the OpenCLIP file, the VAE of the SD checkpoint) and
   :func:`sdk.ml.preflight.estimate` adds the activations for each mode on a CUDA device of ``--gpu-gb``, with the
   job's real settings (SR600 runs the guidance's two branches as two batch-1 UNet calls).
2. **Measure** (``--measure``, CPU): one real-size SR600 UNet forward (batch 1, ``--frames`` frames, feed-forward
   chunking as ``low`` sets it) per size in a fresh process; its peak RSS above the loaded model, divided by
   batch × frames × latent pixels × 320 × dtype bytes, is the "bytes per unit" the preflight multiplies by.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHILD = r'''
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import torch
from sdk.ml.checkpoints import load_state_dict
from plugins.sr600.unet import load_sr600_unet
weights, frames, h, w, chunk = Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1"
unet_file = next(p for p in weights.glob("sr_step*.pth"))
def rss(key="VmRSS"):
    return int(dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines())[key].split()[0]) * 1024
unet = load_sr600_unet(load_state_dict(unet_file)).eval()
if chunk:
    unet.enable_forward_chunking(chunk_size=1, dim=1)  # what memory_mode=low sets
x = torch.randn(1, 4, frames, h // 8, w // 8)
ctx = torch.randn(1, 77, 1024)
with torch.inference_mode():  # touch every weight first (a mapped checkpoint is paged in on first use)
    unet(torch.randn(1, 4, 2, 10, 16), torch.tensor([699]), encoder_hidden_states=ctx, return_dict=False)
import gc; gc.collect()
Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: the load's transient peak is not the forward's
base = rss()
t0 = time.perf_counter()
with torch.inference_mode():
    unet(x, torch.tensor([699]), encoder_hidden_states=ctx, return_dict=False)
print(json.dumps({"frames": frames, "height": h, "width": w, "ff_chunking": chunk, "base_gb": base / 2**30,
                  "peak_gb": rss("VmHWM") / 2**30, "act_bytes": rss("VmHWM") - base,
                  "seconds": time.perf_counter() - t0}))
'''


def preflight(weights: Path, gpu_gb: float, precision: str) -> dict:
    import torch

    from sdk.ml import preflight as pf
    from sdk.ml.memory import MODES
    from plugins.sr600.params import SR600Params

    p = SR600Params()
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]
    parts = pf.components(weights)
    rows = {}
    for mode in MODES:
        # the same call the worker makes (sdk.ml.runtime.plan_runtime), with the SR600 job's params
        e = pf.estimate(parts, mode=mode, device=torch.device("cuda"), dtype=dtype, frames=p.num_frames,
                        height=p.height, width=p.width, cfg=pf.cfg_batched(p), decode_chunk=p.decode_chunk_size,
                        available=int(gpu_gb * 2**30), bytes_per_unit=pf.denoiser_bytes_per_unit(p))
        rows[mode] = {**e.to_dict(), "fits": e.fits}
    return {"parts": [vars(c) for c in parts], "estimates": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--gpu-gb", type=float, default=24.0)
    ap.add_argument("--precision", default="fp16", choices=("fp16", "bf16", "fp32"))
    ap.add_argument("--measure", action="store_true")
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--no-chunking", action="store_true", help="measure without feed-forward chunking (mode none)")
    ap.add_argument("--sizes", default="272x256,720x1280")  # SR600 sizes: latent rows ≡ 2 (mod 8)
    a = ap.parse_args()

    from sdk.ml.preflight import gb

    res = preflight(a.weights, a.gpu_gb, a.precision)
    print(f"preflight, sr600.upscale 32×1280×720 {a.precision} on a {a.gpu_gb:g} GB CUDA device:")
    for mode, e in res["estimates"].items():
        print(f"  {mode:8s} weights resident {gb(e['resident_weights_bytes']):>8s} + activations "
              f"{gb(e['activations_bytes']):>8s} = {gb(e['total_bytes']):>8s}  (×1.15 margin: "
              f"{gb(e['total_bytes'] * 1.15)}) {'fits' if e['fits'] else 'does NOT fit'}")
    if a.measure:
        for size in a.sizes.split(","):
            h, w = (int(v) for v in size.split("x"))
            out = subprocess.run([sys.executable, "-c", CHILD, str(REPO), str(a.weights), str(a.frames), str(h),
                                  str(w), "0" if a.no_chunking else "1"], capture_output=True, text=True, check=True).stdout
            m = json.loads(out.strip().splitlines()[-1])
            units = a.frames * (h // 8) * (w // 8) * 320 * 4  # batch 1, fp32 on the CPU
            m["bytes_per_unit"] = m["act_bytes"] / units
            print(f"  measured (CPU fp32, batch 1, {a.frames} frames, {w}×{h}, ff chunking {not a.no_chunking}): activations {gb(m['act_bytes'])}, "
                  f"{m['bytes_per_unit']:.1f} bytes per unit, {m['seconds']:.0f} s")
            res.setdefault("measured", []).append(m)
    print(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
