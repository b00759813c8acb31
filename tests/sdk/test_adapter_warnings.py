"""'latest' adapters that will find nothing are said at queue time; which adapters a job used goes into its log;
a composite trainer's step gets its own values."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdk.plugins import PluginRegistry
from sdk.project import Project
from sdk.queueing import plan_jobs, queue_jobs


@pytest.fixture(scope="module")
def dv_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real tiny DreamVideo weights (the queue inspects them)."""
    from plugins.dreamvideo.tiny import make_tiny_weights

    return make_tiny_weights(tmp_path_factory.mktemp("dv") / "tiny")


@pytest.fixture()
def registry() -> PluginRegistry:
    import plugins.dreamvideo as dv

    return PluginRegistry([("dreamvideo", dv)])


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    import imageio_ffmpeg

    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "rex.png")
    video = tmp_path / "squat.mp4"
    w = imageio_ffmpeg.write_frames(str(video), (16, 16), fps=8, macro_block_size=1, ffmpeg_log_level="error")
    w.send(None)
    for i in range(4):
        w.send(np.full((16, 16, 3), i * 40, np.uint8).tobytes())
    w.close()
    p = Project.create(tmp_path / "P.vgen")
    p.add_subject("Rex", [tmp_path / "rex.png"])
    p.add_motion("squat", [video])
    yield p
    p.close()


def _trained(project: Project, tmp_path: Path, kind: str, **target: int) -> object:
    src = tmp_path / kind.replace(".", "_")
    src.mkdir()
    (src / "weights.safetensors").write_bytes(b"w")
    return project.add_adapter(kind, kind, src, step=10, **target)


def compose(project: Project, registry: PluginRegistry, weights: Path, **params: list) -> list[str]:
    batch = queue_jobs(project, registry, "dreamvideo.compose", prompts=["a <rex> squatting"], subject="Rex",
                       motion="squat", weights=str(weights), params=params or None)
    return list(batch.warnings)


def test_compose_with_an_untrained_motion_warns_at_queue_time(project, registry, dv_weights, tmp_path) -> None:
    rex, squat = project.subject("Rex"), project.motion("squat")
    _trained(project, tmp_path, "dreamvideo.identity", subject_id=rex.id)
    warnings = compose(project, registry, dv_weights)
    assert len(warnings) == 1
    assert "The motion 'squat' has no trained adapter yet" in warnings[0] and "made without it" in warnings[0]
    assert "motion_adapter='latest'" in warnings[0]

    # not when the motion's training is queued (it runs first), nor when the user said 'none'
    queue_jobs(project, registry, "dreamvideo.motion", kind="train", motion="squat", weights=str(dv_weights))
    assert compose(project, registry, dv_weights) == []
    for j in project.jobs(status="QUEUED"):
        project.request_cancel(j.id)
    assert compose(project, registry, dv_weights, motion_adapter=["none"], identity_adapter=["none"]) == []

    # nor once it is trained
    _trained(project, tmp_path, "dreamvideo.motion", motion_id=squat.id)
    assert compose(project, registry, dv_weights) == []


def test_the_job_log_names_the_adapters_it_used(project, registry, dv_weights, tmp_path) -> None:
    from sdk.payload import build_payload

    identity = _trained(project, tmp_path, "dreamvideo.identity", subject_id=project.subject("Rex").id)
    compose(project, registry, dv_weights)
    job = project.claim_next_job()
    build_payload(project, registry.spec(job.spec_id), job)
    logged = [entry["message"] for entry in project.logs(job.id)]
    assert any(f"identity_adapter: Adapter {identity.id} (dreamvideo.identity, step 10, the latest)" in m
               and "motion_adapter: none (no adapter of this kind was trained" in m for m in logged), logged


def test_a_composite_trainer_takes_each_steps_own_values(project, registry, dv_weights) -> None:
    jobs = plan_jobs(project, registry, "dreamvideo.subject", kind="train", subject="Rex", weights=str(dv_weights),
                     params={"dreamvideo.subject_step1.max_train_steps": [30], "dreamvideo.subject_step2.max_train_steps": [10],
                             "dreamvideo.subject_step2.learning_rate": [2e-5], "train_batch_size": [2]})
    step1, step2 = jobs
    assert (step1.params["max_train_steps"], step2.params["max_train_steps"]) == (30, 10)
    assert (step1.params["learning_rate"], step2.params["learning_rate"]) == (1e-4, 2e-5)  # step 1 keeps its default
    assert step1.params["train_batch_size"] == step2.params["train_batch_size"] == 2
    from sdk.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="STEP_ID.NAME"):
        plan_jobs(project, registry, "dreamvideo.subject", kind="train", subject="Rex", weights=str(dv_weights),
                  params={"dreamvideo.motion.max_train_steps": [3]})
