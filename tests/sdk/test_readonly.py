"""A read-only project opens for reading and refuses every change with "read-only", never "damaged"."""
from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sdk import cli
from sdk.errors import ProjectReadOnly
from sdk.outputs import export
from sdk.project import Project
from sdk.records import JobStatus, NewJob
from tests.sdk.readonly_helpers import IS_ROOT, Mounts, mounts  # noqa: F401 - mounts is a fixture


def png(path: Path) -> Path:
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(path)
    return path


def home(tmp_path: Path, mounts: Mounts) -> Path:  # noqa: F811
    """Where a project that will be made read-only lives: a tmpfs as root (remountable ro), else tmp_path."""
    return mounts.tmpfs(tmp_path / "disk") if IS_ROOT else tmp_path


def fill(root: Path, tmp_path: Path) -> dict[str, Any]:
    """A project with a subject, a prompt, an output, a failed and a queued job."""
    with Project.create(root) as p:
        p.add_subject("Rex", [png(tmp_path / "rex.png")])
        p.add_prompt("a dog")
        done, failed, queued = p.add_jobs([NewJob(kind="generate", spec_id="demo.t2v", params={}, seed=i)
                                           for i in range(3)]).job_ids
        job = p.claim_next_job()
        assert job is not None and job.id == done
        staging = p.staging_dir(done)
        frames = staging / "frames"
        frames.mkdir()
        for i in range(2):
            Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(frames / f"{i:06d}.png")
        (staging / "video.mp4").write_bytes(b"mp4")
        (staging / "meta.json").write_text('{"params": {"fps": 8}}')
        p.finish_job(done, staging)
        p.claim_next_job()
        p.fail_job(failed, "boom")
    return {"done": done, "failed": failed, "queued": queued}


WRITES: list[tuple[str, Callable[[Project, dict[str, Any], Path], Any]]] = [
    ("add_prompt", lambda p, ids, t: p.add_prompt("a cat")),
    ("add_jobs", lambda p, ids, t: p.add_jobs([NewJob(kind="generate", spec_id="demo.t2v", params={}, seed=9)])),
    ("add_subject", lambda p, ids, t: p.add_subject("Max", [png(t / "max.png")])),
    ("import_asset", lambda p, ids, t: p.import_asset(png(t / "x.png"), "image")),
    ("request_cancel", lambda p, ids, t: p.request_cancel(ids["queued"])),
    ("retry", lambda p, ids, t: p.retry(ids["failed"])),
    ("clear_finished", lambda p, ids, t: p.clear_finished()),
    ("claim_next_job", lambda p, ids, t: p.claim_next_job()),
    ("requeue_running", lambda p, ids, t: p.requeue_running()),
    ("staging_dir", lambda p, ids, t: p.staging_dir(ids["queued"])),
    ("acquire_render_lock", lambda p, ids, t: p.acquire_render_lock()),
    ("add_adapter", lambda p, ids, t: p.add_adapter("a", "k", png(t / "w.png"))),
]


def check_reads_and_refusals(root: Path, ids: dict[str, Any], tmp_path: Path) -> None:
    with Project.open(root) as p:
        assert p.read_only and p.damaged is None
        info = p.info()
        assert info["read_only"] and info["jobs"]["QUEUED"] == 1 and info["subjects"] == 1
        assert [j.status for j in p.jobs()] == [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.QUEUED]
        assert p.subject("Rex").images[0].asset.path.is_file()
        assert p.prompts()[0].text == "a dog" and p.integrity_check() == "ok"
        out = p.output(ids["done"])
        frames = export(out.dir, tmp_path / "exported", "png")  # export writes elsewhere: it works
        assert len(list(frames.iterdir())) == 2
        shutil.rmtree(frames)
        for name, write in WRITES:
            with pytest.raises(ProjectReadOnly) as err:
                write(p, ids, tmp_path)
            text = f"{err.value.user_message} {err.value.hint}"
            assert "read-only" in err.value.user_message, name
            assert "Copy the project folder somewhere writable" in err.value.hint, name
            assert "damaged" not in text and "backup" not in text.lower(), name


def test_a_read_only_folder_opens_for_reading_and_refuses_writes(tmp_path: Path, mounts: Mounts) -> None:  # noqa: F811
    root = home(tmp_path, mounts) / "Shared.vgen"
    ids = fill(root, tmp_path)
    mounts.make_read_only(root)
    files_before = sorted(p.name for p in root.iterdir())

    check_reads_and_refusals(root, ids, tmp_path)

    assert sorted(p.name for p in root.iterdir()) == files_before


def test_a_read_only_database_file_in_a_writable_folder(tmp_path: Path, mounts: Mounts) -> None:  # noqa: F811
    root = tmp_path / "Shared.vgen"
    ids = fill(root, tmp_path)
    mounts.make_read_only(root / "project.db")
    check_reads_and_refusals(root, ids, tmp_path)


def test_a_read_only_copy_with_uncheckpointed_wal_still_shows_the_latest_commits(tmp_path: Path,
                                                                                 mounts: Mounts) -> None:  # noqa: F811
    src = tmp_path / "Live.vgen"
    with Project.create(src) as p:
        p.add_prompt("first")
    holder = sqlite3.connect(src / "project.db")  # keeps the WAL from being checkpointed away on close
    holder.execute("PRAGMA wal_autocheckpoint=0")
    holder.execute("INSERT INTO prompts (text, negative, created_at) VALUES ('only in the wal', '', 0)")
    holder.commit()
    dest = home(tmp_path, mounts) / "Copy.vgen"
    shutil.copytree(src, dest)
    holder.close()
    assert (dest / "project.db-wal").stat().st_size > 0
    mounts.make_read_only(dest)

    with Project.open(dest) as p:
        assert p.read_only
        assert [x.text for x in p.prompts()] == ["first", "only in the wal"]


def test_cli_on_a_read_only_project_lists_and_refuses_with_read_only(tmp_path: Path, mounts: Mounts,  # noqa: F811
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = home(tmp_path, mounts) / "Shared.vgen"
    fill(root, tmp_path)
    mounts.make_read_only(root)

    assert cli.main(["queue", "list", str(root)]) == 0
    assert cli.main(["project", "info", str(root)]) == 0
    capsys.readouterr()
    assert cli.main(["prompt", "add", str(root), "a cat"]) == 2
    err = capsys.readouterr().err
    assert "read-only" in err and "damaged" not in err and "backup" not in err.lower()
