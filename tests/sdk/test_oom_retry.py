"""Out of memory during a job: one retry, in a fresh worker, one memory mode lighter; a second out-of-memory fails
the job with the figures and the queue goes on. The failing generator is a real plugin, installed as a
distribution and found through the entry-point group by the worker; its allocation really fails."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sdk import events as ev
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.records import JobStatus
from sdk.service import RenderService
from sdk.testing.install import install_plugin, pythonpath_with

pytestmark = pytest.mark.slow

PLUGIN = '''
from pydantic import Field
from sdk.hookspecs import hookimpl
from sdk.params import Params
from sdk.specs import GeneratorSpec


class OomParams(Params):
    prompt: str = "x"
    num_frames: int = Field(2, ge=1)
    height: int = 32
    width: int = 32
    num_inference_steps: int = 4
    fail_at_step: int = 2
    fail_in: str = Field("none,balanced", description="memory modes in which that step runs out of memory")


@hookimpl
def vgen_generators():
    return [GeneratorSpec(id="oomtest.gen", title="Runs out of memory", method="test", params=OomParams,
                          entry="oomtest_gen:Generator", inputs=("text",))]
'''

GENERATOR = '''
import numpy as np
import torch

from sdk.video import Video


class Generator:
    def generate(self, ctx, req):
        p = req.params
        latents = torch.randn(1, 4, p.num_frames, p.height // 8, p.width // 8, generator=ctx.generator(req.seed))
        for step in range(1, p.num_inference_steps + 1):
            ctx.check_cancelled()
            if step == p.fail_at_step and ctx.memory_mode in p.fail_in.split(","):
                torch.empty(1 << 60, dtype=torch.uint8)  # a real allocation the machine cannot satisfy
            latents = latents * 0.9
            ctx.progress(step, p.num_inference_steps)
        return Video(np.zeros((p.num_frames, p.height, p.width, 3), np.uint8), fps=8)
'''


@pytest.fixture
def oom_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    site = install_plugin(tmp_path / "site", "vgen-oomtest", {"oomtest.py": PLUGIN, "oomtest_gen.py": GENERATOR},
                          {"oomtest": "oomtest"})
    monkeypatch.setenv("PYTHONPATH", pythonpath_with(site))  # the worker process finds it
    monkeypatch.syspath_prepend(str(site))                     # and so does this one
    registry = load_plugins(refresh=True)
    assert "oomtest.gen" in registry.generators
    yield registry
    load_plugins(refresh=True)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Oom.vgen")
    yield p
    p.close()


def _queue(project: Project, registry, weights: Path, fail_in: str) -> str:
    return queue_jobs(project, registry, "oomtest.gen", prompts=["x"], params={"fail_in": [fail_in]},
                      weights=str(weights)).job_ids[0]


def test_out_of_memory_retries_once_one_mode_lighter(oom_plugin, project: Project, tiny_t2v_weights: Path) -> None:
    job = _queue(project, oom_plugin, tiny_t2v_weights, fail_in="none")
    events: list[ev.Event] = []
    service = RenderService(project, registry=oom_plugin)
    service.subscribe(events.append)

    stats = service.run(until_empty=True)

    assert stats["succeeded"] == 1 and stats["failed"] == 0
    record = project.job(job)
    assert record.status is JobStatus.SUCCEEDED and record.attempts == 2
    assert service.executor.starts == 2, "the retry ran in a fresh worker"
    logs = [line["message"] for line in project.logs(job)]
    assert any("retrying once in memory_mode=balanced" in m and "out of memory in memory_mode=none" in m for m in logs)
    meta = json.loads(project.output(job).meta_path.read_text())
    assert meta["options"]["memory_mode"] == "balanced" and meta["runtime"]["memory_mode"] == "balanced"
    assert meta["options"]["oom_retry"]["from"] == "none" and "can't allocate memory" in meta["options"]["oom_retry"]["error"]
    assert [e for e in events if isinstance(e, ev.JobRequeued)]


def test_a_second_out_of_memory_fails_with_the_figures_and_the_queue_goes_on(oom_plugin, project: Project,
                                                                             tiny_t2v_weights: Path) -> None:
    job = _queue(project, oom_plugin, tiny_t2v_weights, fail_in="none,balanced")
    after = _queue(project, oom_plugin, tiny_t2v_weights, fail_in="")

    stats = RenderService(project, registry=oom_plugin).run(until_empty=True)

    failed = project.job(job)
    assert failed.status is JobStatus.FAILED and failed.attempts == 2
    assert failed.error_message.startswith("Out of memory twice: memory_mode=none and then memory_mode=balanced.")
    assert "GB needed" in failed.error_message or "MB needed" in failed.error_message
    assert "available on cpu" in failed.error_message and "num_frames" in failed.error_hint
    assert project.job(after).status is JobStatus.SUCCEEDED
    assert stats["failed"] == 1 and stats["succeeded"] == 1
