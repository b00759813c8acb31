"""Schema migrations: fresh projects are at head, older ones are upgraded with a backup, newer ones refused."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sdk.errors import ProjectError
from sdk.project import Project
from sdk.records import JobStatus, NewJob
from sdk.store import db
from sdk.store.models import Base


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_project(root: Path) -> Path:
    with Project.create(root) as p:
        p.add_prompt("a fox in the snow")
        p.add_jobs([NewJob(kind="generate", spec_id="demo.t2v", params={"num_frames": 8}, seed=3)])
    return root / "project.db"


def test_new_project_is_at_head_and_matches_the_models(tmp_path: Path) -> None:
    db_path = make_project(tmp_path / "P.vgen")
    _, head = db.known_revisions()
    assert db.read_revision(db_path) == head
    engine = db.make_engine(db_path)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_older_project_is_backed_up_then_upgraded(tmp_path: Path) -> None:
    db_path = make_project(tmp_path / "Old.vgen")
    db.downgrade(db_path, "0001")  # as written by the first release

    with Project.open(db_path.parent) as p:
        assert p.info()["schema_revision"] == db.known_revisions()[1]
        assert p.prompts()[0].text == "a fox in the snow"
        assert p.jobs()[0].status is JobStatus.QUEUED and p.jobs()[0].params == {"num_frames": 8}
        assert p.integrity_check() == "ok"

    backup = tmp_path / "Old.vgen" / "project.db.bak-0001"
    assert db.read_revision(backup) == "0001"
    with sqlite3.connect(backup) as con:  # a complete copy of the old database
        assert con.execute("SELECT text FROM prompts").fetchall() == [("a fox in the snow",)]
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with sqlite3.connect(db_path) as con:
        assert con.execute("SELECT name FROM sqlite_master WHERE name='ix_jobs_status_position'").fetchone()


def test_project_from_a_newer_version_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db_path = make_project(tmp_path / "Future.vgen")
    con = sqlite3.connect(db_path)
    con.execute("UPDATE alembic_version SET version_num = '9999_future'")
    con.commit()
    con.close()
    before = sha(db_path)
    files_before = sorted(p.name for p in db_path.parent.iterdir())

    with pytest.raises(ProjectError) as err:
        Project.open(db_path.parent)

    assert "made by a newer VGen Studio" in err.value.user_message
    assert "9999_future" in err.value.user_message and "Update VGen Studio" in err.value.hint
    assert sha(db_path) == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == files_before  # no backup, nothing new


def test_sqlite_file_that_is_not_a_project_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "Stranger.vgen"
    folder.mkdir()
    con = sqlite3.connect(folder / "project.db")
    con.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    with pytest.raises(ProjectError, match="not a VGen Studio project database"):
        Project.open(folder)
