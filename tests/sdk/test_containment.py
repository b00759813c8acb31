"""A project folder is untrusted input: symlinks and crafted rows never reach a file outside it."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdk import cli
from sdk.errors import UnsafeProject
from sdk.project import Project
from sdk.records import JobStatus, NewJob

REPO = Path(__file__).resolve().parents[2]


def png(path: Path, seed: int = 0) -> Path:
    arr = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def victim(tmp_path: Path) -> Path:
    """A folder of someone's files, next to the project."""
    v = tmp_path / "victim"
    v.mkdir()
    (v / "thesis.docx").write_text("years of work")
    (v / "sub").mkdir()
    (v / "sub" / "photo.jpg").write_bytes(b"\xff\xd8 holiday")
    return v


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


def make_project(tmp_path: Path, jobs: int = 0) -> Path:
    root = tmp_path / "Sent.vgen"
    with Project.create(root) as p:
        if jobs:
            p.add_jobs([NewJob(kind="generate", spec_id="demo.t2v", params={}, seed=i) for i in range(jobs)])
    return root


def replace_with_link(path: Path, target: Path) -> None:
    if path.is_dir():
        path.rmdir()
    elif path.exists():
        path.unlink()
    path.symlink_to(target, target_is_directory=target.is_dir())


# ---------------------------------------------------------------- the folder's own entries
@pytest.mark.parametrize("entry", [".staging", "outputs", "adapters", "assets", "assets/ab", ".lock", "project.db-wal"])
def test_a_project_whose_own_entry_is_a_symlink_is_refused_naming_it(tmp_path: Path, entry: str) -> None:
    root = make_project(tmp_path)
    target = victim(tmp_path)
    if entry == "assets/ab":
        (root / "assets").mkdir(exist_ok=True)
    link_to = target / "thesis.docx" if entry in (".lock", "project.db-wal") else target
    replace_with_link(root / entry, link_to)
    before = snapshot(target)

    with pytest.raises(UnsafeProject) as err:
        Project.open(root)

    assert str(root / entry) in err.value.user_message and "symbolic link" in err.value.user_message
    assert "Remove the link" in err.value.hint
    assert snapshot(target) == before


def test_queue_run_on_a_project_with_a_linked_staging_deletes_nothing(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path)
    target = victim(tmp_path)
    replace_with_link(root / ".staging", target)
    before = snapshot(target)

    assert cli.main(["queue", "run", str(root)]) == 2

    assert snapshot(target) == before
    assert ".staging" in capsys.readouterr().err


def test_staging_linked_after_open_is_refused_by_recovery_and_by_the_service(tmp_path: Path) -> None:
    from sdk.service import RenderService

    root = make_project(tmp_path)
    target = victim(tmp_path)
    before = snapshot(target)
    with Project.open(root) as p:
        replace_with_link(root / ".staging", target)  # swapped while the project is open
        with pytest.raises(UnsafeProject, match=r"\.staging"):
            p.requeue_running()
        with pytest.raises(UnsafeProject, match=r"\.staging"):
            RenderService(p).run(until_empty=True)  # empty queue: recovery alone would have wiped the target
        with pytest.raises(UnsafeProject):
            p.staging_dir("0123456789ab")
    assert snapshot(target) == before


def test_a_lock_linked_after_open_is_never_truncated(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    target = victim(tmp_path) / "thesis.docx"
    with Project.open(root) as p:
        replace_with_link(root / ".lock", target)
        with pytest.raises(UnsafeProject, match="symbolic link"):
            p.acquire_render_lock()
        os.unlink(root / ".lock")
        os.link(target, root / ".lock")  # a hard link is refused too
        with pytest.raises(UnsafeProject, match="hard link"):
            p.acquire_render_lock()
    assert target.read_text() == "years of work"


def test_recovery_removes_links_inside_staging_but_not_what_they_point_to(tmp_path: Path) -> None:
    root = make_project(tmp_path, jobs=1)
    target = victim(tmp_path)
    before = snapshot(target)
    with Project.open(root) as p:
        job = p.claim_next_job()
        assert job is not None
        staging = p.staging_dir(job.id)
        (staging / "frames").symlink_to(target)  # a link deep inside a job's staging folder
        (root / ".staging" / "aaaaaaaaaaaa").symlink_to(target)  # a link in place of a job folder
        assert p.requeue_running() == 1
        assert list((root / ".staging").iterdir()) == []
        # a link where a job's staging folder belongs is replaced by a real, empty folder
        (root / ".staging" / job.id).symlink_to(target)
        d = p.staging_dir(job.id)
        assert d.is_dir() and not d.is_symlink() and list(d.iterdir()) == []
    assert snapshot(target) == before


def test_finish_job_replaces_a_linked_output_folder_without_following_it(tmp_path: Path) -> None:
    root = make_project(tmp_path, jobs=1)
    target = victim(tmp_path)
    before = snapshot(target)
    with Project.open(root) as p:
        job = p.claim_next_job()
        assert job is not None
        staging = p.staging_dir(job.id)
        (staging / "video.mp4").write_bytes(b"v")
        (staging / "meta.json").write_text("{}")
        (root / "outputs" / job.id).symlink_to(target)  # planted where the output will go
        out = p.finish_job(job.id, staging)
        assert not out.dir.is_symlink() and out.video_path.read_bytes() == b"v"
        with pytest.raises(UnsafeProject):  # only the job's own staging folder is published
            p.finish_job(job.id, target)
    assert snapshot(target) == before


# ---------------------------------------------------------------- crafted rows
def craft_job(db_path: Path, job_id: str, status: str = "QUEUED", position: int = 0, params: str = "{}") -> None:
    con = sqlite3.connect(db_path)
    batch = con.execute("SELECT id FROM batches LIMIT 1").fetchone()
    if batch is None:
        con.execute("INSERT INTO batches (id, created_at) VALUES ('bbbbbbbbbbbb', 0)")
        batch = ("bbbbbbbbbbbb",)
    con.execute(
        "INSERT INTO jobs (id, batch_id, kind, spec_id, spec_version, params, seed, prompt, inputs, weights, status,"
        " position, attempts, created_at, progress_step, progress_total, cancel_requested)"
        " VALUES (?, ?, 'generate', 'demo.t2v', '', ?, 1, 'x', '{}', NULL, ?, ?, 0, 0, 0, 0, 0)",
        (job_id, batch[0], params, status, position))
    con.commit()
    con.close()


def test_a_job_whose_id_is_a_path_is_failed_and_nothing_outside_is_touched(tmp_path: Path) -> None:
    root = make_project(tmp_path, jobs=1)
    target = victim(tmp_path)
    assert (root / ".staging" / ".." / ".." / "victim").resolve() == target.resolve()
    craft_job(root / "project.db", "../../victim", position=-1)  # first in the queue
    before = snapshot(target)

    with Project.open(root) as p:
        listed = {j.id: j for j in p.jobs()}  # listing works and flags the row
        assert "not a job id" in (listed["../../victim"].problem or "")
        with pytest.raises(UnsafeProject, match="victim"):
            p.staging_dir("../../victim")

        claimed = p.claim_next_job()  # skips (and fails) the crafted row, hands out the real one
        assert claimed is not None and claimed.id != "../../victim" and claimed.problem is None
        bad = {j.id: j for j in p.jobs()}["../../victim"]
        assert bad.status is JobStatus.FAILED
        assert "invalid" in (bad.error_message or "") and "crafted" in (bad.error_hint or "")
        assert p.claim_next_job() is None
    assert snapshot(target) == before


def test_a_crafted_running_row_is_requeued_then_failed_and_the_service_keeps_going(tmp_path: Path) -> None:
    from sdk.service import RenderService

    root = make_project(tmp_path)
    target = victim(tmp_path)
    craft_job(root / "project.db", "../../victim", status="RUNNING")
    before = snapshot(target)
    with Project.open(root) as p:
        stats = RenderService(p).run(until_empty=True)  # recovery requeues it; claiming fails it
        assert stats["succeeded"] == 0
        [job] = p.jobs()
        assert job.status is JobStatus.FAILED and job.problem is not None
    assert snapshot(target) == before


def test_fail_job_on_a_malformed_id_builds_no_path(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    target = victim(tmp_path)
    craft_job(root / "project.db", "../../victim", status="RUNNING")
    before = snapshot(target)
    with Project.open(root) as p:
        p.fail_job("../../victim", "stopped")
        assert p.jobs()[0].status is JobStatus.FAILED
    assert snapshot(target) == before


def test_output_and_adapter_rows_pointing_outside_are_not_used(tmp_path: Path) -> None:
    root = make_project(tmp_path, jobs=1)
    target = victim(tmp_path)
    with Project.open(root) as p:
        job = p.claim_next_job()
        assert job is not None
        staging = p.staging_dir(job.id)
        (staging / "video.mp4").write_bytes(b"v")
        (staging / "meta.json").write_text("{}")
        p.finish_job(job.id, staging)
        src = tmp_path / "ckpt"
        src.mkdir()
        (src / "w.safetensors").write_bytes(b"w")
        adapter = p.add_adapter("rex", "dreamvideo.identity", src)
    con = sqlite3.connect(root / "project.db")
    con.execute("UPDATE outputs SET dir = '../victim', video = 'outputs/../../victim/thesis.docx'")
    con.execute("UPDATE adapters SET dir = 'adapters/x/../../../victim'")
    con.commit()
    con.close()

    with Project.open(root) as p:
        assert p.outputs() == [] and p.adapters() == []  # listed rows never lead out
        with pytest.raises(UnsafeProject, match="invalid"):
            p.output(job.id)
        with pytest.raises(UnsafeProject, match="invalid"):
            p.adapter(adapter.id)
    # a symlink planted in place of an output folder makes that row invalid too
    con = sqlite3.connect(root / "project.db")
    con.execute("UPDATE outputs SET dir = ?, video = ?", (f"outputs/{job.id}", f"outputs/{job.id}/video.mp4"))
    con.commit()
    con.close()
    os.rename(root / "outputs" / job.id, tmp_path / "moved")
    (root / "outputs" / job.id).symlink_to(target)
    with Project.open(root) as p:
        assert p.outputs() == []


def test_an_asset_file_linked_outside_makes_its_subject_invalid(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    target = victim(tmp_path)
    with Project.open(root) as p:
        s = p.add_subject("Rex", [png(tmp_path / "a.png")])
        path = s.images[0].asset.path
    path.unlink()
    path.symlink_to(target / "sub" / "photo.jpg")
    with Project.open(root) as p:
        [listed] = p.subjects()
        assert listed.problem is not None and "outside" in listed.problem
        assert not listed.images[0].asset.path.exists()  # never the linked file
        with pytest.raises(UnsafeProject, match="Rex"):
            p.subject("Rex")


def test_a_crafted_asset_hash_never_becomes_a_path(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    with Project.open(root) as p:
        p.add_subject("Rex", [png(tmp_path / "a.png")])
    con = sqlite3.connect(root / "project.db")
    con.execute("UPDATE assets SET hash = '../../../victim/x', ext = 'png/../..'")
    con.execute("UPDATE subject_images SET asset_hash = '../../../victim/x'")
    con.commit()
    con.close()
    with Project.open(root) as p:
        [listed] = p.subjects()
        asset = listed.images[0].asset
        assert asset.problem is not None and "64 hexadecimal" in asset.problem
        assert asset.path == root / "assets" / ".invalid" and listed.problem is not None


def test_vgen_queue_list_shows_a_poisoned_project_without_crashing(tmp_path: Path) -> None:
    root = make_project(tmp_path, jobs=1)
    craft_job(root / "project.db", "../../victim", position=5, params="[1, 2]")
    out = subprocess.run([sys.executable, "-m", "sdk.cli", "queue", "list", str(root)], capture_output=True,
                         text=True, timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
