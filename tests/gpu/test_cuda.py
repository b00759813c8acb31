"""Checks that need a CUDA device (run by scripts/gpu_check.py; skipped everywhere else)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_auto_runs_on_cuda_in_half_precision_through_the_worker(tmp_path: Path, tiny_t2v_weights: Path) -> None:
    from sdk.plugins import load_plugins
    from sdk.project import Project
    from sdk.queueing import queue_jobs
    from sdk.service import RenderService

    with Project.create(tmp_path / "Gpu.vgen") as p:
        job = queue_jobs(p, load_plugins(), "modelscope_t2v.t2v", prompts=["a fox"],
                         params={"num_frames": [4], "height": [32], "width": [32], "num_inference_steps": [2]},
                         weights=str(tiny_t2v_weights)).job_ids[0]
        assert RenderService(p, device="auto").run(until_empty=True)["succeeded"] == 1
        runtime = json.loads(p.output(job).meta_path.read_text())["runtime"]
    assert runtime["device"].startswith("cuda") and runtime["unet_dtype"] == "float16"
    assert runtime["activations_dtype"] == "float16"


@pytest.mark.parametrize("mode", ["balanced", "low", "minimum"])
def test_offload_modes_keep_the_frames(tmp_path: Path, tiny_t2v_weights: Path, mode: str) -> None:
    import numpy as np

    from sdk.context import JobContext, JobRequest, ModelCache
    from sdk.params import validate_params

    from plugins.modelscope_t2v.params import T2VParams
    from plugins.modelscope_t2v.pipeline import T2VGenerator

    params = validate_params(T2VParams, {"prompt": "a fox", "num_frames": 4, "height": 32, "width": 32,
                                         "num_inference_steps": 3})
    out = {}
    for m in ("none", mode):
        ctx = JobContext("g", lambda e: None, staging_dir=tmp_path / m, models=ModelCache(), device="cuda",
                         dtype="float32", memory_mode=m)
        out[m] = T2VGenerator().generate(ctx, JobRequest("g", "generate", "t", params, seed=2,
                                                         weights=tiny_t2v_weights)).frames
        ctx.finish()
    assert np.abs(out["none"].astype(int) - out[mode].astype(int)).max() <= 1
