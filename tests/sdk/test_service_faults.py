"""The service under resource faults and crafted rows: a hung worker, a full disk, a stored recipe that no longer
validates. Real project, real worker process, tiny real weights; the disk is a real (small) tmpfs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from sdk import events as ev
from sdk.errors import DiskFull
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.records import JobStatus
from sdk.service import RenderService

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def queue(project: Project, weights: Path, steps: int = 2, frames: int = 4, size: int = 32, seeds: str = "1") -> str:
    batch = queue_jobs(project, load_plugins(), "modelscope_t2v.t2v", prompts=["a red fox"], seeds=seeds,
                       params={"num_frames": [frames], "height": [size], "width": [size],
                               "num_inference_steps": [steps]}, weights=str(weights))
    return batch.job_ids[0]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Faults.vgen")
    yield p
    p.close()


def test_a_stopped_worker_is_noticed_killed_and_the_queue_goes_on(project: Project, tiny_t2v_weights: Path) -> None:
    hung = queue(project, tiny_t2v_weights, steps=400)
    after = queue(project, tiny_t2v_weights, steps=2)
    # a worker start-up (torch import, model load) takes longer than this limit: only heartbeats keep it alive
    service = RenderService(project, hang_timeout=2.0, heartbeat=0.2)
    stopped: list[int] = []

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.ProgressUpdated) and e.job_id == hung and not stopped:
            stopped.append(service.executor.pid)
            os.kill(service.executor.pid, signal.SIGSTOP)  # alive, but says nothing ever again

    service.subscribe(on_event)
    stats = service.run(until_empty=True)
    job = project.job(hung)
    assert job.status is JobStatus.FAILED
    assert job.error_message.startswith("worker hung (no heartbeat for ") and "--hang-timeout" in job.error_hint
    with pytest.raises(ProcessLookupError):
        os.kill(stopped[0], 0)  # the stopped worker was killed, not left behind
    assert project.job(after).status is JobStatus.SUCCEEDED
    assert stats["succeeded"] == 1 and stats["failed"] == 1 and service.executor.starts == 2


def _set_params(project: Project, job_id: str, raw: str) -> None:
    with project._wengine.begin() as conn:
        conn.execute(text("UPDATE jobs SET params = :p WHERE id = :id"), {"p": raw, "id": job_id})


def test_a_stored_recipe_that_no_longer_validates_fails_that_job_only(project: Project, tiny_t2v_weights: Path) -> None:
    bad_value = queue(project, tiny_t2v_weights)
    unknown_key = queue(project, tiny_t2v_weights)
    good = queue(project, tiny_t2v_weights)
    params = project.job(bad_value).params
    _set_params(project, bad_value, json.dumps({**params, "num_frames": "abc"}))
    _set_params(project, unknown_key, json.dumps({**params, "identity_step": "abc"}))

    stats = RenderService(project).run(until_empty=True)

    assert stats["failed"] == 2 and stats["succeeded"] == 1
    first, second = project.job(bad_value), project.job(unknown_key)
    assert first.status is JobStatus.FAILED and "'num_frames'" in first.error_message and "'abc'" in first.error_message
    assert second.status is JobStatus.FAILED and "identity_step" in second.error_message
    assert project.job(good).status is JobStatus.SUCCEEDED
    # a second run on the same project starts cleanly: nothing poisons the queue
    assert RenderService(project).run(until_empty=True)["failed"] == 0


def test_the_service_never_imports_torch(tmp_path: Path, tiny_t2v_weights: Path) -> None:
    script = f"""
import json, sys
from pathlib import Path
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.service import RenderService
p = Project.create({str(tmp_path / 'Light.vgen')!r})
queue_jobs(p, load_plugins(), "modelscope_t2v.t2v", prompts=["a fox"], seeds="1",
           params={{"num_frames": [2], "height": [32], "width": [32], "num_inference_steps": [2]}},
           weights={str(tiny_t2v_weights)!r})
stats = RenderService(p).run(until_empty=True)
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
print(json.dumps({{"stats": stats, "torch": "torch" in sys.modules,
                  "rss_mb": int(status["VmHWM"].split()[0]) / 1024}}))  # peak resident size
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["stats"]["succeeded"] == 1
    assert result["torch"] is False, "the service process imported torch"
    assert result["rss_mb"] < 250, f"the service grew to {result['rss_mb']:.0f} MB (torch alone is ~700 MB)"


# -- a full disk ----------------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 48 MB tmpfs (needs root and mount; skipped otherwise)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip() or 'not root'})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` until about ``leave`` bytes are free; returns the ballast file."""
    ballast = disk / f"ballast-{uuid.uuid4().hex[:6]}"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(ballast, "wb") as f:
        f.truncate(0)
        chunk = b"\0" * (1 << 20)
        todo = max(0, free - leave)
        while todo > 0:
            f.write(chunk[: min(len(chunk), todo)])
            todo -= len(chunk)
    return ballast


def test_a_full_disk_fails_the_job_cleans_up_and_pauses_the_queue(small_disk: Path, tiny_t2v_weights: Path) -> None:
    project = Project.create(small_disk / "Full.vgen")
    try:
        # 8 noise frames of 256² are a few MB of PNG: they cannot fit in what is left
        first = queue(project, tiny_t2v_weights, steps=2, frames=8, size=256)
        second = queue(project, tiny_t2v_weights, steps=2)
        ballast = _fill(small_disk, leave=600 * 1024)
        events: list[ev.Event] = []
        service = RenderService(project, min_free_bytes=64 * 1024)
        service.subscribe(events.append)

        stats = service.run(until_empty=True)  # returns: a script gets the reason instead of waiting

        assert stats["paused"].startswith("disk full (") and stats["paused"].endswith(f"free at {project.path})")
        job = project.job(first)
        assert job.status is JobStatus.FAILED and job.error_message.startswith("disk full (")
        assert "MB free at" in job.error_message and project.outputs(first) == []
        assert not any((project.path / ".staging").iterdir()), "the failed job's staging was left behind"
        assert project.job(second).status is JobStatus.QUEUED, "work after the fault is kept, not failed"
        paused = [e for e in events if isinstance(e, ev.QueuePaused)]
        assert paused and paused[0].reason == stats["paused"]

        # a restart on the still-full disk refuses with the same kind of message, changing nothing
        with pytest.raises(DiskFull, match=r"^disk full \(\d+ MB free at "):
            RenderService(project, min_free_bytes=1 << 20).run(until_empty=True)
        assert project.job(second).status is JobStatus.QUEUED

        ballast.unlink()  # the user frees space
        assert RenderService(project, min_free_bytes=1 << 20).run(until_empty=True)["succeeded"] == 1
        assert project.job(second).status is JobStatus.SUCCEEDED
        assert project.integrity_check() == "ok"
    finally:
        project.close()


def test_two_workers_share_one_queue_and_no_job_runs_twice(project: Project, tiny_t2v_weights: Path) -> None:
    from sdk.executor import LocalProcessExecutor

    jobs = [queue(project, tiny_t2v_weights, seeds=str(seed)) for seed in range(6)]
    workers = [LocalProcessExecutor("cpu", threads=1), LocalProcessExecutor("cpu", threads=1)]
    started: list[str] = []
    service = RenderService(project, executors=workers)
    service.subscribe(lambda e: started.append(e.job_id) if isinstance(e, ev.JobStarted) else None)

    stats = service.run(until_empty=True)

    assert stats["succeeded"] == 6
    assert sorted(started) == sorted(jobs), "every job started exactly once"
    assert all(project.job(j).attempts == 1 for j in jobs)
    assert all(w.starts == 1 for w in workers), "both devices took work"


def test_a_device_this_machine_lacks_is_refused_before_anything_moves(project: Project,
                                                                      tiny_t2v_weights: Path) -> None:
    from sdk.devices import cuda_devices
    from sdk.errors import InvalidRequest

    if cuda_devices():
        pytest.skip("this machine has CUDA")
    job = queue(project, tiny_t2v_weights)
    with pytest.raises(InvalidRequest, match="no CUDA device") as err:
        RenderService(project, device="cuda:1")
    assert "cpu (" in err.value.hint  # it names the devices there are
    assert project.job(job).status is JobStatus.QUEUED
