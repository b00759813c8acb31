"""Rows that fail validation are listed as invalid, never crash a listing, and never block the queue."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdk.errors import InvalidRequest
from sdk.project import Project
from sdk.records import JobStatus, NewJob


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "Poison.vgen")
    yield p
    p.close()


def queue(p: Project, n: int) -> list[str]:
    return list(p.add_jobs([NewJob(kind="generate", spec_id="demo.t2v", params={"num_frames": 4}, seed=i,
                                   prompt=f"job {i}") for i in range(n)]).job_ids)


def poke(p: Project, sql: str, *args: object) -> None:
    """Write a row the way a damaged file or a hand-edited database would (bypassing the app)."""
    con = sqlite3.connect(p.db_path)
    con.execute("PRAGMA ignore_check_constraints=ON")
    con.execute(sql, args)
    con.commit()
    con.close()


POISONS = [
    ("params", "'[1, 2]'", "params is a JSON list, not a JSON object"),
    ("params", "'{not json'", "params is text that is not JSON"),
    ("inputs", "'\"image\"'", "inputs is str"),
    ("status", "'WEIRD'", "status is str 'WEIRD'"),
    ("seed", "'abc'", "seed is str 'abc', not an integer"),
    ("kind", "'mine'", "kind is str 'mine'"),
    ("position", "'first'", "position is str"),
    ("created_at", "X'00'", "created_at is bytes"),
]


@pytest.mark.parametrize("column,value,problem", POISONS, ids=[f"{c}={v}" for c, v, _ in POISONS])
def test_a_poisoned_job_is_listed_as_invalid_and_the_queue_moves_on(project: Project, column: str, value: str,
                                                                    problem: str) -> None:
    first, second = queue(project, 2)
    poke(project, f"UPDATE jobs SET {column} = {value} WHERE id = ?", first)

    listed = {j.id: j for j in project.jobs()}  # never raises
    assert problem in (listed[first].problem or "")
    assert listed[second].problem is None
    assert project.job(first).problem == listed[first].problem
    assert "problem" in listed[first].to_dict()

    claimed = project.claim_next_job()
    assert claimed is not None and claimed.id == second  # the bad row never runs
    assert project.claim_next_job() is None  # (a text position sorts last: that row is failed only now)
    bad = project.job(first)
    if column == "status":  # not QUEUED, so never claimed: it stays listed as invalid
        assert bad.status is JobStatus.FAILED and project.info()["jobs"]["INVALID"] == 1
    else:
        assert bad.status is JobStatus.FAILED
        assert problem in (bad.error_message or "") and "not run" in (bad.error_message or "")
        assert "crafted" in (bad.error_hint or "")
        assert bad.finished_at is not None


def test_many_bad_rows_in_a_row_are_all_failed_in_one_claim(project: Project) -> None:
    ids = queue(project, 5)
    for job_id in ids[:4]:
        poke(project, "UPDATE jobs SET params = '[]' WHERE id = ?", job_id)
    claimed = project.claim_next_job()
    assert claimed is not None and claimed.id == ids[4]
    assert [j.status for j in project.jobs()] == [JobStatus.FAILED] * 4 + [JobStatus.RUNNING]


def test_an_invalid_row_cannot_be_retried_and_is_cleared_with_the_failed_jobs(project: Project) -> None:
    job_id, weird = queue(project, 2)
    poke(project, "UPDATE jobs SET params = '[1]' WHERE id = ?", job_id)
    poke(project, "UPDATE jobs SET status = 'PAUSED?' WHERE id = ?", weird)  # a status that never runs
    assert project.claim_next_job() is None
    with pytest.raises(InvalidRequest, match="invalid"):
        project.retry(job_id)
    assert project.clear_finished() == 2 and project.jobs() == []


def test_other_tables_flag_or_skip_bad_rows_instead_of_crashing(project: Project, tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    subject = project.add_subject("Rex", [img])
    src = tmp_path / "ckpt"
    src.mkdir()
    (src / "w.bin").write_bytes(b"w")
    project.add_adapter("rex", "dreamvideo.identity", src)
    poke(project, "UPDATE assets SET width = 'wide', ext = 'p n g'")
    poke(project, "UPDATE adapters SET meta = '[not json'")
    poke(project, "UPDATE project_meta SET value = '{oops' WHERE key = 'name'")

    [listed] = project.subjects()
    assert listed.id == subject.id and "width is str 'wide'" in (listed.problem or "")
    assert "extension" in (listed.problem or "")
    assert project.adapters() == []
    assert project.info()["subjects"] == 1
    with Project.open(project.path) as again:  # an unreadable name falls back to the folder name
        assert again.name == "Poison"
