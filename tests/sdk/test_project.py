"""Project folders, subjects/motions/prompts, templates and the job queue (single and multi-process)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

import sdk.project as project_mod
from sdk.errors import InvalidRequest, ProjectError
from sdk.project import Project, list_templates
from sdk.records import JobStatus, NewJob


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Fitness.vgen")
    yield p
    p.close()


def png(path: Path, size: tuple[int, int] = (32, 32), seed: int = 0, mode: str = "RGB") -> Path:
    arr = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


def mp4(path: Path, frames: int = 4) -> Path:
    w = imageio_ffmpeg.write_frames(str(path), (16, 16), fps=8, codec="libx264", pix_fmt_out="yuv420p",
                                    macro_block_size=1)
    w.send(None)
    for i in range(frames):
        w.send(np.full((16, 16, 3), i * 40, np.uint8).tobytes())
    w.close()
    return path


def gen(n: int = 1, prompt: str = "a fox") -> list[NewJob]:
    return [NewJob(kind="generate", spec_id="demo.t2v", params={"num_frames": 4}, seed=i, prompt=prompt)
            for i in range(n)]


def run_job(project: Project, files: dict[str, bytes] | None = None) -> str:
    """Claim the next job and give it a staging folder holding a complete output."""
    job = project.claim_next_job()
    assert job is not None
    d = project.staging_dir(job.id)
    for name, data in (files or {"video.mp4": b"v", "meta.json": b"{}", "thumb.png": b"t"}).items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    return job.id


# ---------------------------------------------------------------- folders
def test_create_lays_out_the_folder_and_open_finds_it_again(tmp_path: Path) -> None:
    with Project.create(tmp_path / "Fitness.vgen") as p:
        assert p.name == "Fitness"
        p.add_prompt("a runner at dawn")
    root = tmp_path / "Fitness.vgen"
    assert {c.name for c in root.iterdir()} >= {"project.db", "assets", "outputs", "adapters", ".staging"}
    for where in (root, root / "project.db"):
        with Project.open(where) as again:
            info = again.info()
            assert (info["name"], info["prompts"], info["path"]) == ("Fitness", 1, str(root))
            assert info["jobs"] == {s.value: 0 for s in JobStatus}
            assert again.integrity_check() == "ok"


def test_create_refuses_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.docx").write_text("mine")
    with pytest.raises(InvalidRequest, match="not an empty folder"):
        Project.create(tmp_path / "busy")
    assert [c.name for c in (tmp_path / "busy").iterdir()] == ["thesis.docx"]


def test_open_missing_or_damaged_project_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="nowhere.vgen"):
        Project.open(tmp_path / "nowhere.vgen")
    broken = tmp_path / "Broken.vgen"
    broken.mkdir()
    (broken / "project.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ProjectError) as err:
        Project.open(broken)
    assert str(broken / "project.db") in err.value.user_message


# ---------------------------------------------------------------- templates
def make_template(root: Path) -> Path:
    root.mkdir()
    png(root / "dog1.png", (32, 32), 1)
    png(root / "dog1-mask.png", (32, 32), 2, "L")
    mp4(root / "jump.mp4")
    (root / "template.json").write_text(json.dumps({
        "title": "Dog demo", "description": "A dog that jumps",
        "prompts": [{"text": "a dog jumping", "negative": "blurry"}],
        "subjects": [{"name": "Rex", "token": "<rex>", "images": ["dog1.png"], "masks": ["dog1-mask.png"]}],
        "motions": [{"name": "jump", "videos": ["jump.mp4"]}],
        "jobs": [{"spec": "demo.t2v", "prompt": 0}],
    }))
    return root


def test_create_from_a_template_imports_its_files(tmp_path: Path) -> None:
    tpl = make_template(tmp_path / "dogs")
    with Project.create(tmp_path / "P.vgen", template=tpl) as p:
        [subject] = p.subjects()
        assert (subject.name, subject.token, subject.images[0].mask is not None) == ("Rex", "<rex>", True)
        assert p.motion("jump").videos[0].num_frames == 4
        assert p.prompts()[0].negative == "blurry"
        assert p.meta("suggested_jobs") == [{"spec": "demo.t2v", "prompt": 0}]


def test_builtin_templates_are_listed_and_found_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    make_template(shelf / "dogs")
    (shelf / "not-a-template").mkdir()
    monkeypatch.setattr(project_mod, "templates_dir", lambda: shelf)
    assert [(t["name"], t["title"]) for t in list_templates()] == [("dogs", "Dog demo")]
    with Project.create(tmp_path / "P.vgen", template="dogs") as p:
        assert p.info()["subjects"] == 1
    with pytest.raises(InvalidRequest, match="dogs"):  # the hint lists what exists
        Project.create(tmp_path / "Q.vgen", template="cats")
    assert not (tmp_path / "Q.vgen").exists()


def test_template_with_a_bad_file_leaves_no_project(tmp_path: Path) -> None:
    tpl = make_template(tmp_path / "dogs")
    (tpl / "jump.mp4").write_bytes(b"broken")
    with pytest.raises(InvalidRequest, match="jump.mp4"):
        Project.create(tmp_path / "P.vgen", template=tpl)
    assert not (tmp_path / "P.vgen").exists()


# ---------------------------------------------------------------- subjects, motions, prompts
def test_subjects_get_a_default_token_and_unique_names(project: Project, tmp_path: Path) -> None:
    s = project.add_subject("My Dog", [png(tmp_path / "a.png"), png(tmp_path / "b.png", seed=1)])
    assert s.token == "<my-dog>" and len(s.images) == 2
    assert project.subject("My Dog") == s == project.subject(s.id) == project.subject(str(s.id))
    with pytest.raises(InvalidRequest, match="already exists"):
        project.add_subject("My Dog", [tmp_path / "a.png"])
    with pytest.raises(InvalidRequest) as err:
        project.subject("Cat")
    assert err.value.field == "subject" and "My Dog" in err.value.hint
    with pytest.raises(InvalidRequest, match="2 images but 1 masks"):
        project.add_subject("Other", [tmp_path / "a.png", tmp_path / "b.png"], masks=[tmp_path / "a.png"])


def test_motions_and_prompts(project: Project, tmp_path: Path) -> None:
    mo = project.add_motion("jump", [mp4(tmp_path / "j.mp4", 3)])
    assert project.motions() == [mo] and mo.videos[0].num_frames == 3
    p = project.add_prompt("  a dog  ", negative="blurry")
    assert p.text == "a dog"
    assert project.update_prompt(p.id, text="a cat").text == "a cat"
    assert project.prompts()[0].negative == "blurry"
    project.remove_prompt(p.id)
    assert project.prompts() == []
    with pytest.raises(InvalidRequest):
        project.add_prompt("   ")
    with pytest.raises(InvalidRequest):
        project.remove_prompt(p.id)


def test_add_adapter_copies_the_folder(project: Project, tmp_path: Path) -> None:
    subject = project.add_subject("Rex", [png(tmp_path / "a.png")])
    src = tmp_path / "trained"
    src.mkdir()
    (src / "embeddings.safetensors").write_bytes(b"w")
    a = project.add_adapter("rex identity", "dreamvideo.identity", src, step=200, subject_id=subject.id,
                            meta={"lr": 1e-4})
    assert (a.path / "embeddings.safetensors").read_bytes() == b"w" and (a.path / "meta.json").is_file()
    assert src.exists()  # copied, not moved
    assert project.adapters(subject_id=subject.id) == [a] == [project.adapter(a.id[:5])]
    assert project.adapters(subject_id=subject.id + 1) == []
    with pytest.raises(InvalidRequest, match="Unknown subject"):
        project.add_adapter("x", "k", src, subject_id=999)


# ---------------------------------------------------------------- queue
def test_jobs_are_queued_in_order_and_found_by_prefix(project: Project) -> None:
    b1 = project.add_jobs(gen(2))
    b2 = project.add_jobs(gen(1, prompt="a cat"))
    jobs = project.jobs()
    assert [j.id for j in jobs] == [*b1.job_ids, *b2.job_ids]
    assert [j.position for j in jobs] == sorted(j.position for j in jobs)
    assert all(len(j) == 12 for j in b1.job_ids) and len(b1.id) == 12
    assert project.jobs(batch_id=b2.id)[0].prompt == "a cat"
    assert project.job(b1.job_ids[0][:6]).id == b1.job_ids[0]
    with pytest.raises(InvalidRequest) as err:
        project.job("")
    assert err.value.field == "job"
    with pytest.raises(InvalidRequest):
        project.add_jobs([])


def test_cancel_retry_move_and_clear(project: Project) -> None:
    a, b, c, d = project.add_jobs(gen(4)).job_ids
    assert project.request_cancel(a).status is JobStatus.CANCELLED
    with pytest.raises(InvalidRequest, match="already finished"):
        project.request_cancel(a)
    project.move(d, -1)
    assert [j.id for j in project.jobs(JobStatus.QUEUED)] == [b, d, c]
    project.move(b, 10)  # clamped at the end
    assert [j.id for j in project.jobs(JobStatus.QUEUED)] == [d, c, b]

    running = project.claim_next_job()
    assert running is not None and running.id == d
    assert project.request_cancel(d).cancel_requested is True
    assert project.job(d).status is JobStatus.RUNNING  # the service stops it
    with pytest.raises(InvalidRequest):
        project.move(d, 1)
    project.fail_job(d, "Out of memory", hint="Use a smaller size", traceback="Traceback…", exit_code=-9)
    failed = project.job(d)
    assert (failed.status, failed.error_message, failed.exit_code) == (JobStatus.FAILED, "Out of memory", -9)

    retried = project.retry(d)
    assert retried.status is JobStatus.QUEUED and retried.error_message is None
    assert not retried.cancel_requested and retried.attempts == 1
    assert project.jobs(JobStatus.QUEUED)[-1].id == d
    with pytest.raises(InvalidRequest, match="only failed or cancelled"):
        project.retry(c)

    done = run_job(project)  # c
    project.finish_job(done, project.staging_dir(done))
    assert project.clear_finished() == 1  # a (cancelled); the succeeded job keeps its output
    assert {j.id for j in project.jobs()} == {b, c, d}
    assert project.outputs(c)[0].video_path.read_bytes() == b"v"


def test_finish_job_publishes_outputs_and_artifacts_together(project: Project, tmp_path: Path) -> None:
    subject = project.add_subject("Rex", [png(tmp_path / "a.png")])
    project.add_jobs([NewJob(kind="train", spec_id="dreamvideo.identity", params={}, seed=0,
                             inputs={"subject": subject.id})])
    job_id = run_job(project, {"video.mp4": b"v", "meta.json": b"{}", "frames/0001.png": b"f",
                               "ckpt/embeddings.safetensors": b"e"})
    project.set_progress(job_id, 3, 10)
    assert (project.job(job_id).progress_step, project.job(job_id).progress_total) == (3, 10)
    project.add_log(job_id, "info", "step 3/10")

    staging = project.staging_dir(job_id)
    out = project.finish_job(job_id, staging, [{"name": "rex", "path": str(staging / "ckpt"),
                                                "kind": "dreamvideo.identity", "step": 10}])

    assert out.dir == project.path / "outputs" / job_id and out.video_path.read_bytes() == b"v"
    assert out.thumb_path is None and out.frames_dir is not None and out.frames_dir.is_dir()
    assert not (project.path / ".staging" / job_id).exists()
    [adapter] = project.adapters(subject_id=subject.id)
    assert (adapter.job_id, adapter.step, adapter.kind) == (job_id, 10, "dreamvideo.identity")
    assert (adapter.path / "embeddings.safetensors").read_bytes() == b"e"
    job = project.job(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.finished_at is not None
    assert project.output(job_id) == out
    assert project.logs(job_id)[0]["message"] == "step 3/10"


def test_finish_job_that_fails_keeps_the_staging_files(project: Project) -> None:
    project.add_jobs(gen(1))
    job_id = run_job(project)
    with pytest.raises(InvalidRequest, match="Unknown subject"):
        project.finish_job(job_id, project.staging_dir(job_id),
                           [{"name": "x", "path": "video.mp4", "kind": "k", "subject_id": 42}])
    assert (project.path / ".staging" / job_id / "video.mp4").read_bytes() == b"v"
    assert not (project.path / "outputs" / job_id).exists()
    assert project.job(job_id).status is JobStatus.RUNNING and project.adapters() == []


def test_requeue_running_after_a_crash(project: Project) -> None:
    a, b, c = project.add_jobs(gen(3)).job_ids
    run_job(project)  # a: left RUNNING with staged files by a "dead" service
    run_job(project)  # b: cancel was requested before the crash
    project.request_cancel(b)
    assert project.requeue_running() == 1
    first = project.jobs()[0]
    assert (first.id, first.status, first.attempts) == (a, JobStatus.QUEUED, 1)
    assert project.job(b).status is JobStatus.CANCELLED
    assert list((project.path / ".staging").iterdir()) == []
    assert project.claim_next_job().attempts == 2  # type: ignore[union-attr]


def test_mark_cancelled_drops_staging(project: Project) -> None:
    project.add_jobs(gen(1))
    job_id = run_job(project)
    project.mark_cancelled(job_id)
    assert project.job(job_id).status is JobStatus.CANCELLED
    assert not (project.path / ".staging" / job_id).exists()
    with pytest.raises(InvalidRequest):
        project.output(job_id)


# ---------------------------------------------------------------- several processes
CHILD = textwrap.dedent("""
    import json, sys
    from sdk.project import Project
    from sdk.records import NewJob
    p = Project.open(sys.argv[1])
    if sys.argv[2] == "add":
        for i in range(25):
            p.add_jobs([NewJob(kind="generate", spec_id="demo.t2v", params={}, seed=i, prompt=sys.argv[3])])
            p.add_prompt(f"{sys.argv[3]} {i}")
    else:
        claimed = []
        while (job := p.claim_next_job()) is not None:
            claimed.append(job.id)
        print(json.dumps(claimed))
    p.close()
""")


def run_children(project: Project, *argvs: list[str]) -> list[str]:
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(project.path), *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for argv in argvs]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(out)
    return outs


def test_two_processes_adding_at_once_both_succeed(project: Project) -> None:
    run_children(project, ["add", "alpha"], ["add", "beta"])
    jobs = project.jobs()
    assert len(jobs) == 50 and len({j.position for j in jobs}) == 50
    assert sorted(j.prompt for j in jobs).count("alpha") == 25
    assert len(project.prompts()) == 50
    assert project.integrity_check() == "ok"


def test_claim_never_hands_a_job_to_two_processes(project: Project) -> None:
    queued = set(project.add_jobs(gen(60)).job_ids)
    outs = run_children(project, ["claim"], ["claim"], ["claim"])
    claimed = [job_id for out in outs for job_id in json.loads(out)]
    assert len(claimed) == len(set(claimed)) == 60
    assert set(claimed) == queued
    assert all(j.status is JobStatus.RUNNING and j.attempts == 1 for j in project.jobs())


# ---------------------------------------------------------------- whole-queue operations and their undo
def test_clear_queued_then_restore_puts_every_job_back_in_its_place(project: Project) -> None:
    a, b, c = project.add_jobs(gen(3)).job_ids
    d, e = project.add_jobs([*gen(1), NewJob(kind="generate", spec_id="demo.up", params={}, seed=0,
                                             depends_on=("@0",))]).job_ids
    running = project.claim_next_job()
    assert running is not None and running.id == a

    cleared = project.clear_queued()
    assert set(cleared) == {b, c, d, e}  # the running job is left alone
    assert project.job(a).status is JobStatus.RUNNING
    assert project.claim_next_job() is None  # nothing left to render
    assert all(project.job(j).status is JobStatus.CANCELLED for j in cleared)
    assert "Clear queued" in (project.job(b).error_message or "")  # after a crash, the row says what happened

    assert set(project.restore_queued(cleared)) == set(cleared)
    assert [j.id for j in project.jobs(JobStatus.QUEUED)] == [b, c, d, e]  # same order as before
    assert project.job(b).error_message is None and project.job(e).depends_on == (d,)
    assert project.restore_queued(cleared) == []  # nothing cancelled to restore any more


def test_clear_queued_of_some_jobs_takes_their_dependents_too(project: Project) -> None:
    step1, step2 = project.add_jobs([*gen(1), NewJob(kind="train", spec_id="demo.step2", params={}, seed=0,
                                                      depends_on=("@0",))]).job_ids
    other = project.add_jobs(gen(1)).job_ids[0]
    assert project.clear_queued([step1]) == [step1, step2]
    assert project.job(other).status is JobStatus.QUEUED


def test_cancel_all_cancels_queued_and_asks_the_running_job_to_stop_and_undo_withdraws_it(project: Project) -> None:
    a, b = project.add_jobs(gen(2)).job_ids
    project.claim_next_job()
    changed = project.cancel_jobs()
    assert set(changed) == {a, b}
    assert project.job(b).status is JobStatus.CANCELLED and project.job(b).error_message is None
    assert project.job(a).status is JobStatus.RUNNING and project.job(a).cancel_requested
    assert set(project.restore_queued(changed)) == {a, b}
    assert not project.job(a).cancel_requested and project.job(b).status is JobStatus.QUEUED

    # the worker had already been told: the job ends cancelled, and the undo can still put it back in its place
    project.cancel_jobs([a])
    project.mark_cancelled(a)
    assert project.restore_queued([a]) == [a]
    assert [j.id for j in project.jobs(JobStatus.QUEUED)] == [a, b]


def test_delete_jobs_removes_only_finished_jobs_without_outputs(project: Project) -> None:
    a, b, c, d = project.add_jobs(gen(4)).job_ids
    done = run_job(project)  # a
    project.finish_job(done, project.staging_dir(done))
    project.request_cancel(b)
    failed = run_job(project)  # c
    project.fail_job(failed, "boom")
    project.add_log(failed, "ERROR", "boom")
    assert project.finished_job_ids() == [b, c]
    assert sorted(project.delete_jobs([a, b, c, d, "0" * 12])) == sorted([b, c])
    assert [j.id for j in project.jobs()] == [a, d]  # the output's job and the queued one stay
    assert project.logs(c) == []
