"""The point of VideoLCM: 4 LCM steps without guidance vs TF-T2V's DDIM 50 steps with guidance 9 (two UNet
passes a step), on the same tiny-twin backbone (the 12-channel TF-T2V core), same frames, size and seed.

Both generators run in this process under a real JobContext with the model cache warm (a first, untimed job
loads the weights), so the timings are the sampling loops plus VAE decoding. On real weights the UNet dominates
and the ratio approaches the count of UNet evaluations: 50 × 2 / 4 = 25×.

    .venv/bin/python benchmarks/lcm_speedup.py [--frames 16 --size 64 --repeats 3 --lcm-steps 4 --ddim-steps 50]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def timed(generator, spec_id: str, params, weights: Path, repeats: int) -> float:
    from sdk.context import JobContext, JobRequest, ModelCache

    cache = ModelCache()
    with tempfile.TemporaryDirectory() as tmp:
        def once() -> float:
            ctx = JobContext("bench", lambda e: None, staging_dir=Path(tmp), models=cache)
            req = JobRequest("bench", "generate", spec_id, params, seed=1, weights=weights)
            t0 = time.perf_counter()
            generator.generate(ctx, req)
            return time.perf_counter() - t0

        once()  # load (cold) — not timed
        return statistics.median(once() for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lcm-steps", type=int, default=4)
    ap.add_argument("--ddim-steps", type=int, default=50)
    a = ap.parse_args()

    import torch

    from plugins.tf_t2v.params import TFT2VParams
    from plugins.tf_t2v.pipeline import TFT2VGenerator
    from plugins.videolcm.params import VideoLCMParams
    from plugins.videolcm.pipeline import VideoLCMGenerator
    from sdk.ml.concat_unet import write_tiny_vgen_folder

    with tempfile.TemporaryDirectory() as tmp:
        # one backbone (same seed, same core): the VideoLCM folder is the TF-T2V one minus the style-image branch
        tft2v = write_tiny_vgen_folder(Path(tmp) / "tft2v", "tft2v_t2v_non_ema_tiny.pth", seed=0, num_image_tokens=4)
        lcm = write_tiny_vgen_folder(Path(tmp) / "videolcm", "videolcm_t2v_non_ema_tiny.pth", seed=0, num_image_tokens=0)
        size = dict(num_frames=a.frames, height=a.size, width=a.size)
        prompt = "a red fox running through fresh snow"
        ddim = timed(TFT2VGenerator(), "tf_t2v.t2v",
                     TFT2VParams(prompt=prompt, num_inference_steps=a.ddim_steps, guidance_scale=9.0, **size), tft2v,
                     a.repeats)
        fast = timed(VideoLCMGenerator(), "videolcm.t2v",
                     VideoLCMParams(prompt=prompt, num_inference_steps=a.lcm_steps, **size), lcm, a.repeats)
    evals = a.ddim_steps * 2 / a.lcm_steps
    print(f"tiny twin, {a.frames} frames {a.size}×{a.size}, CPU threads {torch.get_num_threads()}, median of {a.repeats}")
    print(f"  TF-T2V   DDIM {a.ddim_steps:>2} steps, guidance 9 : {ddim:8.3f} s")
    print(f"  VideoLCM LCM  {a.lcm_steps:>2} steps, no guidance: {fast:8.3f} s")
    print(f"  speed-up (wall time): {ddim / fast:.1f}×  (UNet evaluations: {evals:.0f}×)")


if __name__ == "__main__":
    main()
