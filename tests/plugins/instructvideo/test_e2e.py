"""`vgen train PATH instructvideo.reward --motion NAME` through the real worker (4 steps), then instructvideo.t2v
renders with the trained LoRA (adapter=latest for the motion) and without it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk.cli import main as vgen
from sdk.project import Project
from sdk.records import JobStatus
from sdk.service import RenderService

from plugins.instructvideo.tiny import write_tiny_clip

pytestmark = pytest.mark.slow


def test_reward_training_in_the_worker_then_its_adapter_renders(tmp_path: Path, iv_weights: Path, capsys) -> None:
    video = write_tiny_clip(tmp_path / "walk.mp4", frames=8)
    path = tmp_path / "Prefs.vgen"
    Project.create(path).close()
    assert vgen(["motion", "add", str(path), "walk", str(video)]) == 0, capsys.readouterr().err
    params = ["prompt=a cat walking", "max_train_steps=4", "checkpointing_steps=2", "validation_steps=4", "height=32",
              "width=32", "num_frames=4", "segments=2", "starting_partial=0.15", "sample_steps=2",
              "sample_num_frames=2", "learning_rate=1e-3"]
    argv = ["train", str(path), "instructvideo.reward", "--motion", "walk", "--weights", str(iv_weights)]
    assert vgen(argv + [a for p in params for a in ("--param", p)]) == 0, capsys.readouterr().err
    with Project.open(path) as project:
        stats = RenderService(project).run(until_empty=True)
        assert stats["succeeded"] == 1, [j.error_message for j in project.jobs()]
        adapters = project.adapters()
        assert [(a.kind, a.step) for a in adapters] == [("instructvideo.lora", 2), ("instructvideo.lora", 4)]
        last = adapters[-1]
        assert last.motion_id is not None and last.meta["captions"] == ["a cat walking"]
        assert json.loads((last.path / "meta.json").read_text())["kind"] == "instructvideo.lora"

    gen = ["queue", "add", str(path), "--generator", "instructvideo.t2v", "--prompt", "a cat walking", "--motion",
           "walk", "--weights", str(iv_weights), "--seeds", "1", "--input", "adapter=latest"]
    gp = ["num_frames=2", "height=32", "width=32", "lora=none"]
    assert vgen(gen + [a for p in gp for a in ("--param", p)]) == 0, capsys.readouterr().err
    assert vgen(gen[:-2] + [a for p in gp for a in ("--param", p)]) == 0, capsys.readouterr().err  # the v1.4 base
    with Project.open(path) as project:
        stats = RenderService(project).run(until_empty=True)
        jobs = [j for j in project.jobs() if j.spec_id == "instructvideo.t2v"]
        assert len(jobs) == 2 and stats["succeeded"] == 2, [j.error_message for j in jobs]
        assert all(j.status == JobStatus.SUCCEEDED for j in jobs)
