"""Render-farm scaling: the same 24 tiny jobs on 1 and on 2 local Ray CPU actors (1 thread each), and on the local
executor (one worker process, 1 thread), through the real RenderService.

Prints the throughput ratio 2 actors / 1 actor (target ≥ 1.8× on a 2-core machine) and the per-job dispatch
overhead of the farm vs the local executor ((farm 1 actor - local) / jobs). Workers are warmed first (one job each:
torch import and model load are not timed), so the figures are steady-state queue throughput.

    nice -n 10 .venv/bin/python benchmarks/farm_scaling.py [--jobs 24 --steps 8 --frames 4 --size 32]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any


class KeepWarm:
    """An executor whose worker outlives one RenderService.run (the warm-up run), so the timed run finds it warm."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def shutdown(self) -> None:  # the benchmark shuts the inner executor down itself
        pass


def timed_run(executors: list[Any], weights: Path, jobs: int, params: dict[str, Any], root: Path) -> float:
    """Seconds to render ``jobs`` jobs on warm ``executors`` (one warm-up job per executor first, untimed)."""
    from sdk.plugins import load_plugins
    from sdk.project import Project
    from sdk.queueing import queue_jobs
    from sdk.service import RenderService

    reg = load_plugins()
    wrapped = [KeepWarm(e) for e in executors]
    with Project.create(root / f"Bench-{time.monotonic_ns()}.vgen") as project:
        queue_jobs(project, reg, "modelscope_t2v.t2v", prompts=["warm up"], seeds=f"1-{len(executors)}",
                   params=params, weights=str(weights))
        warm = RenderService(project, registry=reg, executors=wrapped).run()
        assert warm["succeeded"] == len(executors), warm
        queue_jobs(project, reg, "modelscope_t2v.t2v", prompts=["a red fox running through snow"],
                   seeds=f"1-{jobs}", params=params, weights=str(weights))
        t0 = time.perf_counter()
        stats = RenderService(project, registry=reg, executors=wrapped).run()
        elapsed = time.perf_counter() - t0
        assert stats["succeeded"] == jobs, stats
    for e in executors:
        e.shutdown()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=24)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--size", type=int, default=32)
    a = ap.parse_args()

    import ray

    from plugins.modelscope_t2v.tiny import make_tiny_weights
    from sdk import farm
    from sdk.executor import LocalProcessExecutor

    root = Path(tempfile.mkdtemp(prefix="vgen-farm-bench-"))
    os.environ.setdefault("VGEN_MODELS_DIR", str(root / "models"))
    weights = make_tiny_weights(root / "weights", "diffusers")
    params = {"num_frames": [a.frames], "height": [a.size], "width": [a.size], "num_inference_steps": [a.steps]}

    local = timed_run([LocalProcessExecutor("cpu", threads=1)], weights, a.jobs, params, root)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             _temp_dir=tempfile.mkdtemp(prefix="vgr", dir="/tmp"))
    try:
        one = timed_run([farm.make_executor(device="cpu", threads=1)], weights, a.jobs, params, root)
        two = timed_run([farm.make_executor(device="cpu", threads=1) for _ in range(2)], weights, a.jobs, params,
                        root)
    finally:
        ray.shutdown()
    load = os.getloadavg()
    print(f"{a.jobs} jobs of {a.frames}x{a.size}x{a.size}, {a.steps} steps; cores {os.cpu_count()}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"local executor, 1 worker : {local:7.2f} s  ({a.jobs / local:.2f} jobs/s)")
    print(f"farm, 1 actor            : {one:7.2f} s  ({a.jobs / one:.2f} jobs/s)")
    print(f"farm, 2 actors           : {two:7.2f} s  ({a.jobs / two:.2f} jobs/s)")
    print(f"throughput ratio 2/1 actors: {one / two:.2f}x (target >= 1.8x on 2 cores)")
    print(f"dispatch overhead per job, farm vs local: {1000 * (one - local) / a.jobs:+.0f} ms")


if __name__ == "__main__":
    main()
