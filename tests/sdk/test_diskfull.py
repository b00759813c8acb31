"""A full disk under a project gives "disk full (N MB free at PATH)" and leaves the project consistent."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdk.errors import DiskFull
from sdk.project import Project
from sdk.records import JobStatus, NewJob
from tests.sdk.readonly_helpers import Mounts, mounts  # noqa: F401 - mounts is a fixture

REPO = Path(__file__).resolve().parents[2]


def png(path: Path, side: int = 256, seed: int = 0) -> Path:
    arr = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)  # noise: no compression
    Image.fromarray(arr).save(path)
    return path


def fill_disk(folder: Path) -> Path:
    """Write a file until the disk says ENOSPC; delete it to free the space again."""
    filler = folder / "filler.bin"
    with filler.open("wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


@pytest.fixture
def small_disk(tmp_path: Path, mounts: Mounts) -> Path:  # noqa: F811
    return mounts.tmpfs(tmp_path / "disk", size="8m")


def project_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith("project.db"))


def assert_disk_full_message(err: DiskFull, where: Path) -> None:
    assert err.user_message.startswith("disk full (") and f"MB free at {where})" in err.user_message
    assert "Free some space" in err.hint


def test_subject_add_on_a_full_disk_says_so_and_leaves_no_trace(small_disk: Path, tmp_path: Path) -> None:
    root = small_disk / "P.vgen"
    images = [png(tmp_path / "a.png"), png(tmp_path / "b.png", seed=1)]
    with Project.create(root) as p:
        filler = fill_disk(small_disk)
        before = project_files(root)
        with pytest.raises(DiskFull) as err:
            p.add_subject("Rex", images)
        assert_disk_full_message(err.value, root)
        assert project_files(root) == before and p.subjects() == []  # no orphan copies, no row

        filler.unlink()
        assert p.add_subject("Rex", images).images[0].asset.path.is_file()
        assert p.integrity_check() == "ok"


def test_vgen_subject_add_on_a_full_disk_prints_the_message_not_a_traceback(small_disk: Path,
                                                                             tmp_path: Path) -> None:
    root = small_disk / "P.vgen"
    Project.create(root).close()
    fill_disk(small_disk)
    out = subprocess.run([sys.executable, "-m", "sdk.cli", "subject", "add", str(root), "Rex",
                          str(png(tmp_path / "a.png"))], capture_output=True, text=True, timeout=120, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 2
    assert "error: disk full (" in out.stderr and "Traceback" not in out.stderr


def test_a_database_write_on_a_full_disk_is_rolled_back(small_disk: Path) -> None:
    root = small_disk / "P.vgen"
    with Project.create(root) as p:
        p.add_prompt("kept")
        filler = fill_disk(small_disk)
        added = ["kept"]
        with pytest.raises(DiskFull) as err:
            for i in range(2000):  # ~9 kB each: the WAL soon needs to grow, and cannot
                p.add_prompt(f"{i} " + "a long prompt " * 640)
                added.append(f"{i} " + "a long prompt " * 640)
        assert_disk_full_message(err.value, root)
        filler.unlink()
        assert [x.text for x in p.prompts()] == [a.strip() for a in added] and p.integrity_check() == "ok"
        p.add_prompt("after")  # the project works again once there is room


def test_an_adapter_copy_on_a_full_disk_is_undone(small_disk: Path, tmp_path: Path) -> None:
    root = small_disk / "P.vgen"
    src = tmp_path / "ckpt"
    src.mkdir()
    (src / "weights.bin").write_bytes(os.urandom(1 << 20))
    with Project.create(root) as p:
        filler = fill_disk(small_disk)
        with pytest.raises(DiskFull) as err:
            p.add_adapter("rex", "dreamvideo.identity", src)
        assert_disk_full_message(err.value, root)
        assert list((root / "adapters").iterdir()) == [] and p.adapters() == []
        filler.unlink()
        assert (p.add_adapter("rex", "dreamvideo.identity", src).path / "weights.bin").is_file()


def test_failing_a_job_on_a_full_disk_drops_its_partial_files_and_records_the_failure(small_disk: Path) -> None:
    root = small_disk / "P.vgen"
    with Project.create(root) as p:
        p.add_jobs([NewJob(kind="generate", spec_id="demo.t2v", params={}, seed=1)])
        job = p.claim_next_job()
        assert job is not None
        frames = p.staging_dir(job.id)
        try:  # the render filled the disk with its frames
            for i in range(10_000):
                (frames / f"{i:06d}.png").write_bytes(os.urandom(1 << 16))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        p.fail_job(job.id, "disk full (0 MB free)")
        assert p.job(job.id).status is JobStatus.FAILED
        assert not (root / ".staging" / job.id).exists()


def test_a_project_opened_on_a_full_disk_lists_and_writes_again_once_there_is_room(small_disk: Path) -> None:
    root = small_disk / "P.vgen"
    with Project.create(root) as p:
        p.add_prompt("kept")
        p.add_jobs([NewJob(kind="generate", spec_id="demo.t2v", params={}, seed=1)])
    filler = fill_disk(small_disk)  # now SQLite cannot even create the -shm file a writer needs
    with Project.open(root) as p:
        assert [x.text for x in p.prompts()] == ["kept"] and len(p.jobs()) == 1  # reading works
        with pytest.raises(DiskFull) as err:
            p.add_prompt("new")
        assert_disk_full_message(err.value, root)
        with pytest.raises(DiskFull):
            p.acquire_render_lock()
        filler.unlink()
        p.add_prompt("new")  # the same open project writes again
        assert [x.text for x in p.prompts()] == ["kept", "new"]
