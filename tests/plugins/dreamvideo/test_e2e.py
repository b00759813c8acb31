"""`vgen train PATH dreamvideo.subject --subject NAME` through the real worker, then a compose job using the adapters."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdk.cli import main as vgen
from sdk.project import Project
from sdk.service import RenderService

pytestmark = pytest.mark.slow


def test_subject_training_then_compose_in_the_worker(tmp_path: Path, dv_weights, dv_data, capsys) -> None:
    path = tmp_path / "Dream.vgen"
    Project.create(path).close()
    imgs = [str(i) for i in dv_data["images"]]
    assert vgen(["subject", "add", str(path), "dog", *imgs, "--token", "<dog>"]) == 0, capsys.readouterr().err
    params = ["max_train_steps=2", "checkpointing_steps=1", "validation_steps=2", "height=32", "width=32",
              "sample_steps=1", "sample_num_frames=1", "lr_warmup_steps=0", "train_batch_size=1"]
    argv = ["train", str(path), "dreamvideo.subject", "--subject", "dog", "--weights", str(dv_weights)]
    assert vgen(argv + [a for p in params for a in ("--param", p)]) == 0, capsys.readouterr().err
    with Project.open(path) as project:
        stats = RenderService(project).run(until_empty=True)
        assert stats["succeeded"] == 2, [j.error_message for j in project.jobs()]
        subject = project.subject("dog")
        adapters = project.adapters(subject_id=subject.id)
        assert [(a.kind, a.step) for a in adapters] == [("dreamvideo.embedding", 1), ("dreamvideo.embedding", 2),
                                                        ("dreamvideo.identity", 1), ("dreamvideo.identity", 2)]
        assert adapters[-1].meta["embedding_adapter"] == adapters[1].id

    gen = ["queue", "add", str(path), "--generator", "dreamvideo.compose", "--prompt", "a <dog> on the beach", "--subject", "dog",
           "--weights", str(dv_weights), "--seeds", "1"]
    gp = ["num_frames=2", "height=32", "width=32", "num_inference_steps=2", "identity_step=1,2", "motion_adapter=none"]
    assert vgen(gen + [a for p in gp for a in ("--param", p)]) == 0, capsys.readouterr().err
    with Project.open(path) as project:
        stats = RenderService(project).run(until_empty=True)
        jobs = [j for j in project.jobs() if j.spec_id == "dreamvideo.compose"]
        assert len(jobs) == 2 and stats["succeeded"] == 2, [j.error_message for j in jobs]
