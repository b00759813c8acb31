"""The preference-tuning template: its clips, motions and prompts, HPSv2 scoring every render (the project's auto
metrics), and every suggested job queues (tiny twin)."""
from __future__ import annotations

from pathlib import Path

import plugins.instructvideo as plugin
from sdk.conditions import project_auto_metrics
from sdk.plugins import PluginRegistry
from sdk.project import Project, templates_dir
from sdk.queueing import queue_jobs
from sdk.suggested import suggested_jobs, suggested_request


def test_template_clips_are_small_and_every_suggested_job_queues(tmp_path: Path, iv_weights: Path) -> None:
    folder = templates_dir() / "preference-tuning"
    assert sum(p.stat().st_size for p in folder.glob("*.mp4")) < 200_000
    registry = PluginRegistry([("instructvideo", plugin)])
    with Project.create(tmp_path / "Prefs.vgen", template="preference-tuning") as project:
        assert [m.name for m in project.motions()] == ["walk", "swim"]
        assert project_auto_metrics(project) == ["vgen_metrics.hpsv2"]  # base vs tuned come back scored
        assert [p.text for p in project.prompts()] == ["an orange cat walking on green grass",
                                                       "an orange cat swimming in blue water"]
        counts = []
        for entry in suggested_jobs(project):
            spec_id, request = suggested_request(project, entry)
            request["weights"] = str(iv_weights)  # the twin instead of the real weights id
            batch = queue_jobs(project, registry, spec_id, **request)
            counts.append((spec_id, len(project.jobs(batch_id=batch.id))))
        assert counts == [("instructvideo.reward", 1), ("instructvideo.reward", 1), ("instructvideo.t2v", 8),
                          ("instructvideo.t2v", 4), ("instructvideo.t2v", 4)]


def test_reward_training_without_captions_is_refused_at_queue_time(tmp_path: Path, iv_weights: Path) -> None:
    import pytest

    from sdk.errors import InvalidRequest

    registry = PluginRegistry([("instructvideo", plugin)])
    with Project.create(tmp_path / "Prefs.vgen", template="preference-tuning") as project:
        with pytest.raises(InvalidRequest, match="caption"):
            queue_jobs(project, registry, "instructvideo.reward", prompts=[], inputs={"motion": "walk"},
                       params={"max_train_steps": 2}, weights=str(iv_weights), kind="train")
        assert project.jobs() == []
