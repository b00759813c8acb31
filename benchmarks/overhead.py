"""Overhead of the product around the model: a bare diffusers loop vs the same job through
RenderService (worker process, previews every step, DB writes, MP4 + PNG frames + meta).

Same tiny-twin weights, steps and seed, measured side by side in one run. The worker start is
excluded (a warm worker renders the timed jobs); the first (cold) job shows the model load that a
second job on the same weights no longer pays.

    .venv/bin/python benchmarks/overhead.py [--steps 50 --frames 16 --size 64 --repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def bare_loop(weights: Path, prompt: str, seed: int, steps: int, frames: int, size: int, guidance: float) -> float:
    """The plain diffusers reference: TextToVideoSDPipeline over the same folder (in this process)."""
    import torch
    from diffusers import DDIMScheduler
    from diffusers.pipelines import TextToVideoSDPipeline

    pipe = TextToVideoSDPipeline.from_pretrained(weights)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.eval()
    t0 = time.perf_counter()
    pipe(prompt, num_frames=frames, height=size, width=size, num_inference_steps=steps, guidance_scale=guidance,
         generator=torch.Generator("cpu").manual_seed(seed), output_type="np")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    from plugins.modelscope_t2v.tiny import make_tiny_weights
    from sdk import events as ev
    from sdk.plugins import load_plugins
    from sdk.project import Project
    from sdk.queueing import queue_jobs
    from sdk.service import RenderService

    tmp = Path(tempfile.mkdtemp(prefix="vgen-bench-"))
    weights = make_tiny_weights(tmp / "weights", "diffusers")
    project = Project.create(tmp / "Bench.vgen")
    prompt, guidance = "a red fox running through snow", 9.0
    params = {"num_frames": [a.frames], "height": [a.size], "width": [a.size], "num_inference_steps": [a.steps],
              "guidance_scale": [guidance]}
    queue_jobs(project, load_plugins(), "modelscope_t2v.t2v", prompts=[prompt], seeds=[1] * 1,
               params=params, weights=str(weights))
    for _ in range(a.repeats):
        queue_jobs(project, load_plugins(), "modelscope_t2v.t2v", prompts=[prompt], seeds="1", params=params,
                   weights=str(weights))

    started: dict[str, float] = {}
    durations: list[float] = []
    previews = 0

    def on_event(e: ev.Event) -> None:
        nonlocal previews
        if isinstance(e, ev.JobStarted):
            started[e.job_id] = time.perf_counter()
        elif isinstance(e, ev.PreviewReady):
            previews += 1
        elif isinstance(e, ev.JobFinished):
            durations.append(time.perf_counter() - started[e.job_id])

    service = RenderService(project)
    service.subscribe(on_event)
    service.run(until_empty=True)
    cold, warm = durations[0], durations[1:]

    bare = [bare_loop(weights, prompt, 1, a.steps, a.frames, a.size, guidance) for _ in range(a.repeats)]
    w, b = statistics.median(warm), statistics.median(bare)
    print(f"config: {a.frames} frames {a.size}x{a.size}, {a.steps} DDIM steps, CFG {guidance}, tiny twin, CPU")
    print(f"bare diffusers loop (median of {a.repeats}):           {b:.3f} s")
    print(f"RenderService job, warm worker (median of {len(warm)}):  {w:.3f} s   previews sent: {previews}")
    print(f"ratio service/bare: {w / b:.3f}  (target <= 1.05)")
    print(f"cold job (loads weights): {cold:.3f} s   warm job: {w:.3f} s   load paid by the cold job: {cold - w:.3f} s")


if __name__ == "__main__":
    main()
