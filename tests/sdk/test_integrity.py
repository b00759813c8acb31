"""A damaged project.db is found on open (quick_check; integrity_check after an unclean shutdown), kept
read-only, and every refused write says how to recover without losing the original."""
from __future__ import annotations

import hashlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sdk.errors import ProjectError, ProjectReadOnly
from sdk.project import CHECKED_AFTER_KEY, Project
from sdk.records import NewJob


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_project(root: Path, jobs: int = 200) -> list[str]:
    with Project.create(root) as p:
        ids = list(p.add_jobs([NewJob(kind="generate", spec_id="demo.t2v", params={"num_frames": 8}, seed=i,
                                      prompt=f"a fox, take {i} " + "x" * 200) for i in range(jobs)]).job_ids)
        for job_id in ids[:20]:
            p.add_log(job_id, "info", "queued")
    return ids


def garbage_page(db_path: Path) -> None:
    """Overwrite one page in the middle of the file with random bytes (as a failing disk would)."""
    con = sqlite3.connect(db_path)
    page_size, pages = con.execute("PRAGMA page_size").fetchone()[0], con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    with db_path.open("r+b") as f:
        f.seek(page_size * (pages // 2))
        f.write(bytes(range(256)) * (page_size // 256))


def swap_indexes(db_path: Path) -> None:
    """Make two indexes point at each other's b-tree: every page is well-formed (quick_check says ok),
    but the index contents no longer match their tables (only integrity_check sees it)."""
    con = sqlite3.connect(db_path)
    root = dict(con.execute("SELECT name, rootpage FROM sqlite_master WHERE type='index'").fetchall())
    a, b = "ix_jobs_status_position", "ix_job_logs_job_id_ts"
    con.execute("PRAGMA writable_schema=ON")
    con.execute("UPDATE sqlite_master SET rootpage=? WHERE name=?", (root[b], a))
    con.execute("UPDATE sqlite_master SET rootpage=? WHERE name=?", (root[a], b))
    version = con.execute("PRAGMA schema_version").fetchone()[0]
    con.execute(f"PRAGMA schema_version={version + 1}")  # connections already open reload the schema
    con.commit()
    con.close()
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA quick_check").fetchone() == ("ok",)
    con.close()


def assert_recovery_hint(err: ProjectError) -> None:
    assert "damaged" in err.user_message
    assert "Back up first" in err.hint and ".recover" in err.hint and "recovered.db" in err.hint


def test_a_garbage_page_opens_read_only_and_every_write_says_how_to_recover(tmp_path: Path) -> None:
    root = tmp_path / "Disk.vgen"
    make_project(root)
    garbage_page(root / "project.db")
    before = sha(root / "project.db")

    with Project.open(root) as p:
        assert p.read_only and p.damaged and p.read_only_reason is None
        for write in (lambda: p.add_prompt("x"), p.claim_next_job, p.requeue_running, p.acquire_render_lock,
                      lambda: p.add_jobs([NewJob(kind="generate", spec_id="demo.t2v", params={}, seed=1)])):
            with pytest.raises(ProjectReadOnly) as err:
                write()
            assert_recovery_hint(err.value)
        try:  # reading what is left either works or says the same
            p.jobs()
        except ProjectError as exc:
            assert_recovery_hint(exc)
        assert p.info()["damaged"]
    assert sha(root / "project.db") == before  # nothing was written to it


def test_the_recovery_the_hint_gives_works(tmp_path: Path) -> None:
    sqlite = shutil.which("sqlite3")
    if sqlite is None:
        pytest.skip("the sqlite3 command-line tool is not installed")
    probe = tmp_path / "probe.db"
    sqlite3.connect(probe).execute("CREATE TABLE t (x)").connection.close()
    if subprocess.run([sqlite, str(probe), ".recover"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("this sqlite3's .recover fails even on a sound database (Debian 12's 3.40.1 says "
                    "'SQL logic error'); the hint asks for a working sqlite3")
    root = tmp_path / "Disk.vgen"
    ids = make_project(root)
    garbage_page(root / "project.db")
    copy = tmp_path / "Recovered.vgen"
    copy.mkdir()
    dump = subprocess.run([sqlite, str(root / "project.db"), ".recover"], capture_output=True, timeout=120)
    subprocess.run([sqlite, str(copy / "project.db")], input=dump.stdout, check=True, capture_output=True, timeout=120)

    with Project.open(copy) as p:
        assert not p.read_only and p.integrity_check() == "ok"
        assert {j.id for j in p.jobs()} <= set(ids) and len(p.jobs()) > 0
        p.add_prompt("writable again")


def test_a_file_that_is_no_database_is_refused_with_the_recovery_hint(tmp_path: Path) -> None:
    root = tmp_path / "Trash.vgen"
    root.mkdir()
    (root / "project.db").write_bytes(b"\x00garbage" * 512)
    with pytest.raises(ProjectError) as err:
        Project.open(root)
    assert str(root / "project.db") in err.value.user_message
    assert "Back up first" in err.value.hint


HOLDER = textwrap.dedent("""
    import sys
    from sdk.project import Project
    lock = Project.open(sys.argv[1]).acquire_render_lock(holder="killed service")
    print("locked", flush=True)
    sys.stdin.read()
""")


def kill_a_renderer(root: Path) -> None:
    """Start a process that holds the render lock, then SIGKILL it: an unclean shutdown."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def test_integrity_check_runs_after_an_unclean_shutdown_only(tmp_path: Path) -> None:
    clean, unclean = tmp_path / "Clean.vgen", tmp_path / "Unclean.vgen"
    for root in (clean, unclean):
        make_project(root, jobs=20)
    Project.open(clean).acquire_render_lock().release()  # a clean stop leaves an empty lock file
    kill_a_renderer(unclean)
    for root in (clean, unclean):
        swap_indexes(root / "project.db")  # only integrity_check can see this

    with Project.open(clean) as p:  # quick_check only: cheap, and it finds nothing
        assert not p.read_only
    with Project.open(unclean) as p:  # the dead holder is noticed: the full check runs and fails
        assert p.read_only and "missing from index" in (p.damaged or "")
        with pytest.raises(ProjectReadOnly) as err:
            p.add_prompt("x")
        assert_recovery_hint(err.value)


def test_after_an_unclean_shutdown_a_sound_database_is_checked_once(tmp_path: Path) -> None:
    root = tmp_path / "P.vgen"
    make_project(root, jobs=5)
    kill_a_renderer(root)
    with Project.open(root) as p:
        assert not p.read_only
        key = p.meta(CHECKED_AFTER_KEY)
        assert key and "@" in key  # the check is recorded for that holder, so it is not repeated
    swap_indexes(root / "project.db")
    with Project.open(root) as p:
        assert not p.read_only  # (already checked after that shutdown: quick_check only)


def test_taking_over_from_a_dead_renderer_checks_the_database_first(tmp_path: Path) -> None:
    root = tmp_path / "P.vgen"
    make_project(root, jobs=5)
    with Project.open(root) as p:  # opened while nothing was wrong
        kill_a_renderer(root)
        swap_indexes(root / "project.db")
        with pytest.raises(ProjectReadOnly) as err:
            p.acquire_render_lock()
        assert_recovery_hint(err.value)
        assert p.read_only
