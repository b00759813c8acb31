"""`vgen train PATH videolcm.distill --motion NAME` through the real worker: checkpoints become project Adapters."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sdk.cli import main as vgen
from sdk.project import Project
from sdk.records import JobStatus
from sdk.service import RenderService

pytestmark = pytest.mark.slow


def test_vgen_train_runs_in_the_worker_and_adds_adapters(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                         teacher_weights: Path) -> None:
    import imageio.v2 as imageio

    teacher = teacher_weights
    video = tmp_path / "walk.mp4"
    rng = np.random.default_rng(0)
    imageio.mimwrite(str(video), [rng.integers(0, 255, (48, 48, 3), dtype=np.uint8) for _ in range(8)], fps=8)
    path = tmp_path / "Distill.vgen"
    Project.create(path).close()
    assert vgen(["motion", "add", str(path), "walk", str(video)]) == 0
    params = ["prompt=a person walking", "max_train_steps=2", "checkpointing_steps=1", "validation_steps=2",
              "num_frames=2", "height=32", "width=32", "lr_warmup_steps=0", "train_batch_size=1"]
    argv = ["train", str(path), "videolcm.distill", "--motion", "walk", "--weights", str(teacher)]
    assert vgen(argv + [a for p in params for a in ("--param", p)]) == 0, capsys.readouterr().err

    with Project.open(path) as project:
        stats = RenderService(project).run(until_empty=True)
        assert stats == {"succeeded": 1, "failed": 0, "cancelled": 0}, project.jobs()[0].error
        job = project.jobs()[0]
        assert job.kind == "train" and job.status == JobStatus.SUCCEEDED
        adapters = project.adapters()
        assert [a.step for a in adapters] == [1, 2]
        last = adapters[-1]
        assert last.kind == "videolcm.student" and last.job_id == job.id and last.motion_id is not None
        assert last.meta["base_weights"] == str(teacher.resolve())
        assert (last.path / "weights.safetensors").exists() and (last.path / "training_state.pt").exists()
        assert json.loads((last.path / "meta.json").read_text())["kind"] == "videolcm.student"
