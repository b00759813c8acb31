"""Composite trainers (TrainerSpec.expands_to), subject/motion grid axes and adapter params at queue time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdk.errors import InvalidRequest
from sdk.plugins import PluginRegistry
from sdk.project import Project
from sdk.queueing import plan_jobs


@pytest.fixture()
def project(tmp_path: Path):
    imgs = []
    for i in range(2):
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(tmp_path / f"a{i}.png")
        imgs.append(tmp_path / f"a{i}.png")
    p = Project.create(tmp_path / "P.vgen")
    p.add_subject("dog", imgs)
    p.add_subject("cat", imgs)
    yield p
    p.close()


@pytest.fixture(autouse=True)
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights must resolve at queue time; a folder is enough (nothing is loaded)."""
    (tmp_path / "w").mkdir()
    monkeypatch.setattr("sdk.queueing._check_weights", lambda *a: str(tmp_path / "w"))


@pytest.fixture()
def registry() -> PluginRegistry:
    import plugins.dreamvideo as dv

    return PluginRegistry([("dreamvideo", dv)])


def test_a_composite_trainer_queues_its_steps_in_order(project, registry) -> None:
    jobs = plan_jobs(project, registry, "dreamvideo.subject", kind="train", subject="dog",
                     params={"initializer_token": ["dog"], "max_train_steps": [5], "embedding": ["latest"]})
    assert [j.spec_id for j in jobs] == ["dreamvideo.subject_step1", "dreamvideo.subject_step2"]
    assert jobs[0].params["initializer_token"] == "dog" and "initializer_token" not in jobs[1].params
    assert jobs[0].params["max_train_steps"] == jobs[1].params["max_train_steps"] == 5
    assert jobs[1].params["learning_rate"] == 1e-5  # each step keeps its own defaults
    assert all(j.inputs["subject"] == project.subject("dog").id for j in jobs)
    with pytest.raises(InvalidRequest, match="Unknown parameter 'bogus'"):
        plan_jobs(project, registry, "dreamvideo.subject", kind="train", subject="dog", params={"bogus": [1]})


def test_subject_lists_and_adapter_steps_are_grid_axes(project, registry) -> None:
    jobs = plan_jobs(project, registry, "dreamvideo.compose", prompts=["a <dog> running"], subject=["dog", "cat"],
                     seeds="1,2", params={"identity_step": [100, 200]})
    assert len(jobs) == 2 * 2 * 2
    assert {(j.inputs["subject"], j.params["identity_step"], j.seed) for j in jobs} == {
        (s, st, seed) for s in (1, 2) for st in (100, 200) for seed in (1, 2)}


def test_unknown_adapter_ids_are_refused_at_queue_time(project, registry) -> None:
    with pytest.raises(InvalidRequest) as e:
        plan_jobs(project, registry, "dreamvideo.compose", prompts=["a dog"], params={"identity_adapter": ["nope"]})
    assert e.value.field == "identity_adapter" and "'nope'" in e.value.user_message


def test_step_two_waits_for_step_one_and_is_cancelled_with_it(project, registry) -> None:
    from sdk.records import JobStatus

    plan = plan_jobs(project, registry, "dreamvideo.subject", kind="train", subject="dog", seeds="1,2")
    batch = project.add_jobs(plan)
    step1 = [project.job(j) for j in batch.job_ids if project.job(j).spec_id.endswith("step1")]
    step2 = [project.job(j) for j in batch.job_ids if project.job(j).spec_id.endswith("step2")]
    assert {s2.seed: s2.depends_on for s2 in step2} == {s1.seed: (s1.id,) for s1 in step1}
    project.request_cancel(step1[0].id)  # the user cancels seed 1's step 1 before it ran
    claimed = project.claim_next_job()
    assert claimed.id == step1[1].id  # seed 2's step 1 runs; seed 1's step 2 never does
    cancelled = next(s for s in step2 if s.seed == step1[0].seed)
    assert project.job(cancelled.id).status is JobStatus.CANCELLED
    assert "was cancelled" in project.job(cancelled.id).error_message
