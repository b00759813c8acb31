"""Farm scheduling in the store, without Ray: model affinity and device requirements (real project, real SQLite)."""
from __future__ import annotations

import shutil
from pathlib import Path

from sdk.farm.scheduling import device_requirement
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.records import JobStatus


def test_an_actor_prefers_a_job_with_the_weights_it_has_loaded(tmp_path: Path, tiny_t2v_weights: Path) -> None:
    other = shutil.copytree(tiny_t2v_weights, tmp_path / "other-weights")
    reg = load_plugins()
    params = {"num_frames": [2], "height": [32], "width": [32], "num_inference_steps": [2]}
    with Project.create(tmp_path / "Sched.vgen") as p:
        for w in (tiny_t2v_weights, other, tiny_t2v_weights, other):
            queue_jobs(p, reg, "modelscope_t2v.t2v", prompts=["a fox"], seeds="1", params=params, weights=str(w))
        a, b, c, d = p.jobs()
        warm_on_other = b.weights
        assert p.claim_next_job(prefer=warm_on_other).id == b.id  # skips A: that would reload a model
        assert p.claim_next_job(prefer=warm_on_other).id == d.id
        assert p.claim_next_job(prefer=warm_on_other).id == a.id  # none left with those weights: queue order
        # a job the executor cannot take stays queued for another one, with the note `queue list` shows
        assert p.claim_next_job(accept=lambda job: job.id != c.id) is None
        p.note_waiting(c.id, "no farm worker can run this job: it needs a CUDA GPU")
        assert p.job(c.id).status is JobStatus.QUEUED and "CUDA" in p.job(c.id).error_message
        claimed = p.claim_next_job()
        assert claimed.id == c.id and p.job(c.id).error_message is None  # the note goes once it runs


def test_device_requirement_of_a_job() -> None:
    class Job:
        def __init__(self, **options: str) -> None:
            self.options = options

    assert device_requirement(Job(precision="fp16")) == "cuda"
    assert device_requirement(Job(precision="bf16")) is None
    assert device_requirement(Job(device="cuda:1")) == "cuda"
    assert device_requirement(Job()) is None
