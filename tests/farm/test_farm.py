"""The render farm on a real local Ray cluster started by this module (2 CPUs), real worker processes, tiny real
weights, real SQLite and ffmpeg. Skipped, with the reason, when Ray (the ``farm`` extra) is not installed."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the farm extra is not installed (pip install 'vgen-studio[farm]')")

from sdk import farm  # noqa: E402
from sdk.errors import InvalidRequest  # noqa: E402
from sdk.plugins import load_plugins  # noqa: E402
from sdk.project import Project  # noqa: E402
from sdk.queueing import queue_jobs  # noqa: E402
from sdk.records import JobStatus  # noqa: E402
from sdk.service import RenderService  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local Ray instance for the module (2 CPUs, its own temp dir: short, for Ray's socket paths)."""
    tmp = tempfile.mkdtemp(prefix="vgr", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING", _temp_dir=tmp)
    yield
    ray.shutdown()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Farm.vgen")
    yield p
    p.close()


def actors(n: int = 2, **kw):
    return [farm.make_executor(device="cpu", threads=1, models_dir=os.environ["VGEN_MODELS_DIR"], **kw)
            for _ in range(n)]


def queue(project: Project, weights, seeds: str = "1", steps: int = 2, prompts=("a red fox",), **options):
    return queue_jobs(project, load_plugins(), "modelscope_t2v.t2v", prompts=list(prompts), seeds=seeds,
                      params={"num_frames": [2], "height": [32], "width": [32], "num_inference_steps": [steps]},
                      weights=str(weights), options=options or None)


def run_in_thread(service: RenderService) -> threading.Thread:
    t = threading.Thread(target=service.run, kwargs={"until_empty": True}, daemon=True)
    t.start()
    return t


def wait_for(cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)  # polling another process's progress, with a deadline


def integrity(project: Project) -> str:
    with sqlite3.connect(project.path / "project.db") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def test_a_12_job_grid_registers_every_output_once(project: Project, tiny_t2v_weights: Path) -> None:
    queue(project, tiny_t2v_weights, seeds="1-6", prompts=("a red fox", "a paper boat"))
    # one actor returns outputs through the object store, the other writes to a shared staging path
    service = RenderService(project, executors=actors(1) + actors(1, shared_staging=True))
    stats = service.run(until_empty=True)

    assert stats == {"succeeded": 12, "failed": 0, "cancelled": 0}
    jobs = project.jobs()
    assert [j.status for j in jobs] == [JobStatus.SUCCEEDED] * 12
    outputs = project.outputs()
    assert sorted(o.job_id for o in outputs) == sorted(j.id for j in jobs), "one output per job, none twice"
    assert all(o.video_path.exists() for o in outputs)
    assert not any((project.path / ".staging").iterdir()), "nothing left in staging"
    assert integrity(project) == "ok"


def test_killing_an_actor_mid_job_fails_that_job_only(project: Project, tiny_t2v_weights: Path) -> None:
    queue(project, tiny_t2v_weights, seeds="1-4", steps=10)
    service = RenderService(project, executors=actors(2))
    thread = run_in_thread(service)
    wait_for(lambda: any(j.progress_step >= 1 for j in project.jobs(JobStatus.RUNNING)))
    victim = next(j for j in project.jobs(JobStatus.RUNNING) if j.progress_step >= 1)
    executor = service._running[victim.id]
    os.kill(ray.get(executor.actor.info.remote())["pid"], signal.SIGKILL)  # the node's actor process dies
    thread.join(120)
    assert not thread.is_alive()

    failed = project.job(victim.id)
    assert failed.status is JobStatus.FAILED
    assert executor.node in failed.error_message and "lost mid-job" in failed.error_message
    others = [j for j in project.jobs() if j.id != victim.id]
    assert [j.status for j in others] == [JobStatus.SUCCEEDED] * 3, [j.error_message for j in others]
    assert len(project.outputs()) == 3
    assert integrity(project) == "ok"


def test_cancel_reaches_the_actor_within_a_step(project: Project, tiny_t2v_weights: Path) -> None:
    queue(project, tiny_t2v_weights, seeds="1", steps=400)
    service = RenderService(project, executors=actors(1), grace_period=60.0)  # a kill would take 60 s
    thread = run_in_thread(service)
    wait_for(lambda: any(j.progress_step >= 1 for j in project.jobs(JobStatus.RUNNING)))
    job = project.jobs(JobStatus.RUNNING)[0]
    asked = time.monotonic()
    service.cancel(job.id)
    thread.join(60)
    assert project.job(job.id).status is JobStatus.CANCELLED
    assert time.monotonic() - asked < 10, "the worker stopped at its next step, not after the grace period"
    assert project.job(job.id).progress_step < 400


def test_an_unreachable_address_fails_fast_and_jobs_stay_queued(project: Project, tiny_t2v_weights: Path) -> None:
    queue(project, tiny_t2v_weights, seeds="1")
    project.close()
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "sdk.cli", "queue", "run", str(project.path), "--farm",
                          "ray://127.0.0.1:9"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert time.monotonic() - t0 < 10 + 5  # 10 s for the address, a few for the interpreter start
    assert res.returncode == 2 and "nothing answers at 127.0.0.1:9" in res.stderr, res.stderr
    with Project.open(project.path) as p:
        assert [j.status for j in p.jobs()] == [JobStatus.QUEUED]
    with pytest.raises(InvalidRequest, match="not a Ray address"):
        farm.parse_address("ray://nohost")


def test_a_job_no_actor_can_run_stays_queued_with_the_reason(project: Project, tiny_t2v_weights: Path,
                                                             monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import sdk.devices

    with monkeypatch.context() as m:  # queued on a workstation with a GPU
        m.setattr(sdk.devices, "cuda_devices", lambda: ["cuda:0"])
        gpu_job = project.job(queue(project, tiny_t2v_weights, seeds="1", precision="fp16").job_ids[0])
    queue(project, tiny_t2v_weights, seeds="2")
    service = RenderService(project, executors=actors(1))
    stats = service.run(until_empty=True)  # returns: it does not spin on the job nobody can take

    assert stats["succeeded"] == 1 and gpu_job.id in stats["unschedulable"]
    job = project.job(gpu_job.id)
    assert job.status is JobStatus.QUEUED and "needs a CUDA GPU (precision=fp16)" in job.error_message
    from sdk.cli import main

    project.close()
    assert main(["queue", "list", str(project.path)]) == 0
    assert "waiting: no farm worker can run this job: it needs a CUDA GPU" in capsys.readouterr().out


def test_weights_missing_on_a_node_then_pushed(project: Project, tiny_t2v_weights: Path, tmp_path: Path) -> None:
    from sdk import weights as w
    from sdk.farm.push import push_weights

    w.import_weights("user.farm-tiny", tiny_t2v_weights)
    queue(project, "user.farm-tiny", seeds="1")
    bare = tmp_path / "node-models"  # this node's own models directory lacks the weights
    bare.mkdir()
    executor = farm.make_executor(device="cpu", threads=1, models_dir=str(bare))
    RenderService(project, executors=[executor]).run(until_empty=True)
    job = project.jobs()[0]
    assert job.status is JobStatus.FAILED
    assert f"Node {executor.node} has no weights 'user.farm-tiny'" in job.error_message
    assert "vgen models push user.farm-tiny" in job.error_hint

    lines = push_weights("user.farm-tiny", "auto", node_models_dir=str(bare))
    assert len(lines) == 1 and str(bare) in lines[0]
    project.retry(job.id)
    stats = RenderService(project, executors=[farm.make_executor(device="cpu", threads=1, models_dir=str(bare))]).run()
    assert stats["succeeded"] == 1


def test_a_pushed_file_that_arrives_damaged_is_refused(tmp_path: Path) -> None:
    from sdk.farm import actor_class

    node = actor_class(num_cpus=0).remote("cpu", None, None, False, str(tmp_path))
    try:
        with pytest.raises(ray.exceptions.RayTaskError, match="sha256 mismatch"):
            ray.get(node.receive_file.remote("user.x", "unet/w.safetensors", [ray.put(b"abc")], "0" * 64))
        assert not (tmp_path / ".incoming" / "user.x" / "unet" / "w.safetensors").exists()
        with pytest.raises(ray.exceptions.RayTaskError, match="outside"):
            ray.get(node.receive_file.remote("user.x", "../../escape", [ray.put(b"abc")], "0" * 64))
        with pytest.raises(ray.exceptions.RayTaskError, match="not a weights id"):
            ray.get(node.receive_file.remote("../x", "w.bin", [ray.put(b"abc")], "0" * 64))
    finally:
        ray.kill(node)
