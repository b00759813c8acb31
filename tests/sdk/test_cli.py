"""The `vgen` CLI as a user runs it: real processes against a real project."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sdk.cli import main as vgen
from sdk.project import Project
from sdk.records import JobStatus

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "sdk.cli", *args], capture_output=True, text=True, cwd=REPO,
                         env=dict(os.environ), timeout=300)
    if check and out.returncode != 0:
        raise AssertionError(f"vgen {' '.join(args)} → {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def spawn_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-u", "-m", "sdk.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=dict(os.environ))


def wait_for_line(proc: subprocess.Popen, needle: str) -> str:
    for line in proc.stdout:  # blocks on real output, no sleeps
        if needle in line:
            return line
    raise AssertionError(f"process ended without printing {needle!r}: {proc.stderr.read()}")


@pytest.fixture
def project_path(tmp_path: Path) -> str:
    path = tmp_path / "Cli.vgen"
    assert vgen(["project", "new", str(path), "--template", "demo"]) == 0
    return str(path)


def job_ids(project_path: str) -> list[str]:
    with Project.open(project_path) as p:
        return [j.id for j in p.jobs()]


def add(project_path: str, weights: Path, *extra: str) -> int:
    return vgen(["queue", "add", project_path, "--generator", "modelscope_t2v.t2v", "--weights", str(weights),
                 "--param", "num_frames=4", "--param", "height=32", "--param", "width=32", *extra])


# -- bad requests: clear error, nothing queued ------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--param", "num_frames=0", "--prompt", "a"], "num_frames"),
        (["--param", "width=37", "--prompt", "a"], "width"),
        (["--param", "num_inference_steps=-1", "--prompt", "a"], "num_inference_steps"),
        (["--param", "guidance_scale=nan", "--prompt", "a"], "guidance_scale"),
        (["--seeds", "-5", "--prompt", "a"], "Seed"),
        ([], "prompt"),
        (["--prompt", "a", "--image", "x.png"], "takes no image"),
        (["--seeds", "1,,2", "--prompt", "a"], "empty item"),
        (["--seeds", "1-", "--prompt", "a"], "not A-B"),
        (["--prompt", "a fox\x00"], "control character"),
        (["--prompt", "fox " * 30_000], "120,000 characters long"),
    ],
)
def test_invalid_requests_are_refused_before_anything_is_queued(project_path: str, tiny_t2v_weights: Path,
                                                                 capsys, args: list[str], needle: str) -> None:
    assert add(project_path, tiny_t2v_weights, *args) == 2
    err = capsys.readouterr().err
    assert needle in err and "hint:" in err
    assert job_ids(project_path) == []


def test_unknown_generator_names_the_known_ones(project_path: str, capsys) -> None:
    assert vgen(["queue", "add", project_path, "--generator", "nope.t2v", "--prompt", "a"]) == 2
    err = capsys.readouterr().err
    assert "nope.t2v" in err and "modelscope_t2v.t2v" in err
    assert job_ids(project_path) == []


def test_missing_weights_say_how_to_get_them(project_path: str, capsys) -> None:
    assert vgen(["queue", "add", project_path, "--generator", "modelscope_t2v.t2v", "--prompt", "a"]) == 2
    err = capsys.readouterr().err
    assert "modelscope_t2v.ms_1_7b" in err and "vgen models fetch" in err and "make-tiny" in err
    assert job_ids(project_path) == []


def test_grid_of_prompts_seeds_and_values_is_one_batch(project_path: str, tiny_t2v_weights: Path, capsys) -> None:
    assert add(project_path, tiny_t2v_weights, "--prompt", "a", "--prompt", "b", "--seeds", "1,5-6",
               "--param", "guidance_scale=7,9") == 0
    with Project.open(project_path) as p:
        jobs = p.jobs()
    assert len(jobs) == 2 * 3 * 2 and len({j.batch_id for j in jobs}) == 1
    assert {(j.prompt, j.seed, j.params["guidance_scale"]) for j in jobs} == {
        (pr, s, g) for pr in "ab" for s in (1, 5, 6) for g in (7.0, 9.0)}


def test_queue_add_prints_warnings_and_still_queues(project_path: str, tiny_t2v_weights: Path, capsys) -> None:
    long = "a red fox " + " ".join(f"detail{i}" for i in range(40))
    assert add(project_path, tiny_t2v_weights, "--prompt", long, "--param", "num_inference_steps=30") == 0
    out = capsys.readouterr()
    assert "warning: 30 steps: VGen's own scripts would take 31 steps" in out.err
    assert 'warning: The prompt "a red fox detail0' in out.err and "CLIP tokens" in out.err
    assert "Queued 1 job(s)" in out.out and len(job_ids(project_path)) == 1


def test_models_make_tiny_defaults_to_the_weights_own_format(tmp_path: Path, capsys) -> None:
    assert vgen(["models", "make-tiny", "tf_t2v.tft2v_t2v_16f", str(tmp_path / "tiny")]) == 0  # VGen format only
    assert "Wrote tiny vgen weights" in capsys.readouterr().out
    assert (tmp_path / "tiny" / "open_clip_pytorch_model.bin").is_file()
    assert vgen(["models", "make-tiny", "tf_t2v.tft2v_t2v_16f", str(tmp_path / "d"), "--format", "diffusers"]) == 2
    assert "have no 'diffusers' format" in capsys.readouterr().err


def test_models_import_refuses_generator_ids_and_wrong_models(tiny_t2v_weights: Path, capsys) -> None:
    assert vgen(["models", "import", "modelscope_t2v.t2v", str(tiny_t2v_weights)]) == 2
    err = capsys.readouterr().err
    assert "generator id, not a weights id" in err and "hint:" in err and "user.t2v" in err
    assert vgen(["models", "import", "i2vgen_xl.i2vgen_xl", str(tiny_t2v_weights)]) == 2
    assert "names TextToVideoSDPipeline; i2vgen_xl.i2vgen_xl reads I2VGenXLPipeline folders" in capsys.readouterr().err
    assert vgen(["models", "import", "user.t2v", str(tiny_t2v_weights)]) == 0
    assert "Registered user.t2v (diffusers)" in capsys.readouterr().out


def test_corrupt_image_on_import_is_refused_and_nothing_changes(project_path: str, tmp_path: Path, capsys) -> None:
    fake = tmp_path / "photo.png"
    fake.write_text("this is not an image")
    assert vgen(["subject", "add", project_path, "dog", str(fake)]) == 2
    assert "photo.png" in capsys.readouterr().err
    with Project.open(project_path) as p:
        assert p.subjects() == []


# -- the queue across processes ----------------------------------------------------------------
@pytest.mark.slow
def test_second_runner_is_refused_and_adds_from_other_processes_are_picked_up(
        project_path: str, tiny_t2v_weights: Path) -> None:
    assert add(project_path, tiny_t2v_weights, "--prompt", "long", "--param", "num_inference_steps=60") == 0
    runner = spawn_cli("queue", "run", project_path, "--json")
    try:
        wait_for_line(runner, '"job_started"')
        second = run_cli("queue", "run", project_path, check=False)
        assert second.returncode == 2
        assert "already rendering" in second.stderr and f"pid {runner.pid}" in second.stderr
        # a script adds work while the GUI/CLI renders: the running service picks it up
        run_cli("queue", "add", project_path, "--generator", "modelscope_t2v.t2v", "--weights", str(tiny_t2v_weights),
                "--prompt", "added later", "--param", "num_frames=4", "--param", "height=32", "--param", "width=32",
                "--param", "num_inference_steps=2")
        out, err = runner.communicate(timeout=300)
    finally:
        runner.kill()
    assert runner.returncode == 0, err
    with Project.open(project_path) as p:
        jobs = p.jobs()
    assert [j.status for j in jobs] == [JobStatus.SUCCEEDED, JobStatus.SUCCEEDED]
    finished = [json.loads(line) for line in out.splitlines() if '"job_finished"' in line]
    assert {e["job_id"] for e in finished} == {j.id for j in jobs}


@pytest.mark.slow
def test_service_killed_mid_render_requeues_the_job_on_restart(project_path: str, tiny_t2v_weights: Path) -> None:
    assert add(project_path, tiny_t2v_weights, "--prompt", "long", "--param", "num_inference_steps=100") == 0
    runner = spawn_cli("queue", "run", project_path, "--json")
    wait_for_line(runner, '"progress"')
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait(30)
    with Project.open(project_path) as p:
        (job,) = p.jobs()
        assert job.status is JobStatus.RUNNING  # the dead service could not record anything
        assert p.outputs() == []
    # started again: the job goes back to the queue and renders; nothing partial was registered
    result = run_cli("queue", "run", project_path, "--json")
    assert result.returncode == 0
    with Project.open(project_path) as p:
        (job,) = p.jobs()
        assert job.status is JobStatus.SUCCEEDED and job.attempts == 2
        assert [o.job_id for o in p.outputs()] == [job.id]
        assert p.integrity_check() == "ok"
        assert not list((p.path / ".staging").glob("*"))
