"""The render queue end to end: real project, real spawned worker, tiny real weights, real ffmpeg."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from sdk import events as ev
from sdk.outputs import read_frames, read_meta_from_mp4
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.records import JobStatus
from sdk.service import RenderService

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Test.vgen")
    yield p
    p.close()


def queue(project: Project, weights: Path, prompts=("a red fox in snow",), seeds="1", steps=3, frames=4, size=32):
    return queue_jobs(project, load_plugins(), "modelscope_t2v.t2v", prompts=list(prompts), seeds=seeds,
                      params={"num_frames": [frames], "height": [size], "width": [size],
                              "num_inference_steps": [steps]}, weights=str(weights))


def test_batch_renders_every_job_with_previews_and_its_recipe(project: Project, tiny_t2v_weights: Path) -> None:
    batch = queue(project, tiny_t2v_weights, prompts=("a red fox in snow", "a paper boat"), seeds="1,2", steps=4)
    queue(project, tiny_t2v_weights, prompts=("a red fox in snow",), seeds="1", steps=4)  # same recipe as the first job
    events: list[ev.Event] = []
    service = RenderService(project)
    service.subscribe(events.append)
    stats = service.run(until_empty=True)

    assert stats == {"succeeded": 5, "failed": 0, "cancelled": 0}
    assert service.executor.starts == 1, "one warm worker renders the whole queue"
    jobs = project.jobs()
    assert [j.status for j in jobs] == [JobStatus.SUCCEEDED] * 5
    first = jobs[0]
    out = project.output(first.id)
    assert out.video_path.exists() and out.thumb_path and out.thumb_path.exists()
    meta = read_meta_from_mp4(out.video_path)
    assert meta["spec_id"] == "modelscope_t2v.t2v" and meta["seed"] == first.seed
    assert meta["params"]["prompt"] == "a red fox in snow" and meta["params"]["num_inference_steps"] == 4
    frames = read_frames(out.dir)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8

    # same seed, params and weights → same frames
    again = project.output(jobs[4].id)
    assert np.array_equal(read_frames(again.dir), frames)
    assert not np.array_equal(read_frames(project.output(jobs[1].id).dir), frames)  # seed 2 differs

    previews = [e for e in events if isinstance(e, ev.PreviewReady) and e.job_id == first.id]
    progress = [e for e in events if isinstance(e, ev.ProgressUpdated) and e.job_id == first.id]
    assert [p.step for p in progress] == [1, 2, 3, 4]
    assert previews and previews[-1].step == 4 and previews[-1].frames.dtype == np.uint8
    assert previews[-1].frames.shape[0] == 4
    assert not any(project.path.joinpath(".staging").iterdir()) if project.path.joinpath(".staging").exists() else True


def test_worker_killed_mid_job_fails_that_job_and_the_queue_goes_on(project: Project, tiny_t2v_weights: Path) -> None:
    long = queue(project, tiny_t2v_weights, steps=400).job_ids[0]
    short = queue(project, tiny_t2v_weights, steps=2).job_ids[0]
    service = RenderService(project)
    killed: list[int] = []

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.ProgressUpdated) and e.job_id == long and not killed:
            killed.append(service.executor.pid)
            os.kill(service.executor.pid, signal.SIGKILL)

    service.subscribe(on_event)
    service.run(until_empty=True)
    failed = project.job(long)
    assert failed.status is JobStatus.FAILED
    assert failed.exit_code == -9 and "SIGKILL" in failed.error_message
    assert project.outputs(long) == []
    assert project.job(short).status is JobStatus.SUCCEEDED
    assert service.executor.starts == 2


def test_cancel_mid_step_stops_within_the_grace_period(project: Project, tiny_t2v_weights: Path) -> None:
    job = queue(project, tiny_t2v_weights, steps=400).job_ids[0]
    service = RenderService(project, grace_period=10.0)
    asked: list[float] = []
    done: list[float] = []

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.ProgressUpdated) and e.step == 2 and not asked:
            asked.append(time.monotonic())
            service.cancel(job)
        if isinstance(e, ev.JobCancelled):
            done.append(time.monotonic())

    service.subscribe(on_event)
    stats = service.run(until_empty=True)
    assert stats["cancelled"] == 1
    rec = project.job(job)
    assert rec.status is JobStatus.CANCELLED and rec.progress_step < 400
    assert done and done[0] - asked[0] < 10.0
    assert service.executor.starts == 1, "a cooperative cancel keeps the worker"
    assert project.outputs(job) == []


def test_missing_input_file_fails_the_job_with_a_message(project: Project, tiny_t2v_weights: Path, tmp_path: Path) -> None:
    import shutil

    weights = tmp_path / "gone"
    shutil.copytree(tiny_t2v_weights, weights)
    job = queue(project, weights).job_ids[0]
    shutil.rmtree(weights)  # weights removed after queueing
    RenderService(project).run(until_empty=True)
    rec = project.job(job)
    assert rec.status is JobStatus.FAILED
    assert str(weights) in rec.error_message or "weights" in rec.error_message.lower()


def readme_script() -> str:
    """The Python block under "## Headless scripting" in README.md."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Headless scripting", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_script_renders_and_runs_again(tmp_path: Path, tiny_t2v_weights: Path) -> None:
    """The README's script as a user runs it, twice: the worker must not re-run the caller's __main__ (it has no
    main guard), and the second run reuses the project. (How long a run takes is measured by
    benchmarks/overhead.py, not asserted here: this machine's load varies.)"""
    import subprocess
    import sys

    script = tmp_path / "render.py"
    script.write_text(readme_script(), encoding="utf-8")
    (tmp_path / "tiny-weights").symlink_to(tiny_t2v_weights, target_is_directory=True)
    for run in (1, 2):
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert out.returncode == 0, f"run {run}: {out.stderr}"
        assert out.stdout.count("'event': 'job_finished'") == 3, out.stdout[-2000:]
        with Project.open(tmp_path / "Birds.vgen") as p:
            assert len(p.outputs()) == 3 * run
        assert len(list(tmp_path.glob("heron-*.gif"))) == 3 * run
