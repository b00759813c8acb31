"""Metrics run as score jobs on outputs (real worker, SQLite, ffmpeg): on request (`vgen jobs score`), and on their
own for the generators an auto metric applies to. The values are stored with the scored job — in project.db and its
output's meta.json — shown by `vgen jobs show`, and replaced when scored again. Scoring a failed job is refused."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from plugins.classic_cv.flow import flow_warp_scores
from sdk.cli import main as vgen
from sdk.conditions import score_jobs
from sdk.errors import InvalidRequest
from sdk.outputs import read_frames
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.records import JobStatus
from sdk.service import RenderService
from tests.sdk.conditions_helpers import cond_site, project, registry, square_frames  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def test_a_score_on_request_is_stored_with_the_output_and_shown(registry, project: Project, capsys) -> None:
    path = str(project.path)
    job = queue_jobs(project, registry, "condtest.square", params={"num_frames": [6]}).job_ids[0]
    # scoring a job still to run is fine: the score job waits for it
    assert vgen(["jobs", "score", path, job[:8], "--metric", "classic_cv.flow_warp"]) == 0
    score_job = capsys.readouterr().out.split(": ")[1].split()[0]
    assert project.job(score_job).depends_on == (job,) and project.job(score_job).kind == "score"

    assert vgen(["queue", "run", path]) == 0
    assert "classic_cv.flow_warp of " + job in capsys.readouterr().err

    frames = read_frames(project.output(job).dir)
    expected = flow_warp_scores(frames)
    [score] = project.scores(job, metric="classic_cv.flow_warp")  # condtest.brightness scored it on its own too
    assert score.metric == "classic_cv.flow_warp" and score.metric_version == "1.0.0"
    assert list(score.values) == ["warp_error", "warp_error_max", "mean_flow_px"]
    assert score.values == pytest.approx(expected, abs=1e-9) and score.score == pytest.approx(expected["warp_error"])
    assert score.details["score_job"] == score_job and project.outputs(score_job) == []  # a score job has no output
    assert project.job(score_job).status is JobStatus.SUCCEEDED
    meta = json.loads(project.output(job).meta_path.read_text())
    assert meta["scores"]["classic_cv.flow_warp"]["values"] == pytest.approx(expected, abs=1e-9)

    assert vgen(["jobs", "show", path, job]) == 0
    assert f"score: classic_cv.flow_warp warp_error {expected['warp_error']:.6g}" in capsys.readouterr().out
    assert vgen(["jobs", "show", path, job, "--json"]) == 0
    shown = {s["metric"]: s for s in json.loads(capsys.readouterr().out)["scores"]}
    assert shown["classic_cv.flow_warp"]["score_job"] == score_job and "condtest.brightness" in shown

    # scoring again replaces the values (one row per job and metric)
    again = score_jobs(project, registry, ["classic_cv.flow_warp"], jobs=[job]).job_ids[0]
    with sqlite3.connect(project.db_path) as con:
        con.execute("UPDATE scores SET \"values\" = '{\"warp_error\": 9.0}' WHERE metric = 'classic_cv.flow_warp'")
    RenderService(project, registry=registry).run(until_empty=True)
    [score] = project.scores(job, metric="classic_cv.flow_warp")
    assert score.details["score_job"] == again and score.values == pytest.approx(expected, abs=1e-9)


def test_an_auto_metric_scores_each_finished_output_it_applies_to(registry, project: Project) -> None:
    square = queue_jobs(project, registry, "condtest.square", params={"level": [100]}, seeds="1,2").job_ids
    failing = queue_jobs(project, registry, "condtest.square", params={"fail": [True]}).job_ids[0]

    stats = RenderService(project, registry=registry).run(until_empty=True)

    assert stats == {"succeeded": 4, "failed": 1, "cancelled": 0}  # two squares and their two score jobs
    expected = square_frames(4, 32, 32, 100).mean() / 255.0
    for job in square:
        [score] = project.scores(job)
        assert score.metric == "condtest.brightness"
        assert score.values == pytest.approx({"brightness": expected, "frames": 4.0})
        assert any("queued auto metrics condtest.brightness" in line["message"] for line in project.logs(job))
    assert project.scores(failing) == []
    scorers = [j for j in project.jobs() if j.kind == "score"]
    assert len(scorers) == 2 and all(j.status is JobStatus.SUCCEEDED for j in scorers)
    assert registry.metrics["condtest.brightness"].auto and not registry.metrics["classic_cv.flow_warp"].auto


def test_scoring_a_failed_or_unknown_job_is_refused(registry, project: Project, capsys) -> None:
    path = str(project.path)
    job = queue_jobs(project, registry, "condtest.square").job_ids[0]
    claimed = project.claim_next_job()
    project.fail_job(claimed.id, "the device fell over")
    assert project.job(job).status is JobStatus.FAILED

    with pytest.raises(InvalidRequest, match=f"job {job} failed, so it has no output") as err:
        score_jobs(project, registry, ["classic_cv.flow_warp"], jobs=[job])
    assert err.value.field == "output" and "vgen queue retry" in err.value.hint
    assert vgen(["jobs", "score", path, job, "--metric", "classic_cv.flow_warp"]) == 2
    assert "failed, so it has no output" in capsys.readouterr().err
    assert vgen(["jobs", "score", path, "--batch", project.job(job).batch_id, "--metric",
                 "classic_cv.flow_warp"]) == 2
    assert "has no output to score" in capsys.readouterr().err
    assert vgen(["jobs", "score", path, "0000aaaa", "--metric", "classic_cv.flow_warp"]) == 2
    assert "No job with id '0000aaaa'" in capsys.readouterr().err
    assert vgen(["jobs", "score", path, job, "--metric", "nope.metric"]) == 2
    assert "Known metrics:" in capsys.readouterr().err
    assert [j.kind for j in project.jobs()] == ["generate"]  # nothing was queued


def test_invalid_score_rows_are_flagged_never_fatal(registry, project: Project, capsys) -> None:
    job = queue_jobs(project, registry, "condtest.square").job_ids[0]
    with sqlite3.connect(project.db_path) as con:
        con.execute("INSERT INTO scores (job_id, metric, metric_version, \"values\", details, created_at) "
                    "VALUES (?, 'x.nan', '1', '{\"a\": \"high\"}', '{}', 1.0)", (job,))
    [bad] = project.scores(job)
    assert bad.values == {} and bad.score is None and "values is dict" in bad.problem
    assert vgen(["jobs", "show", str(project.path), job]) == 0
    assert "score: x.nan INVALID" in capsys.readouterr().out


def test_a_static_clip_scores_perfect_consistency_and_noise_scores_worse() -> None:
    rng = np.random.default_rng(0)
    still = np.repeat((rng.random((1, 48, 48, 3)) * 255).astype(np.uint8), 5, axis=0)
    noise = (rng.random((5, 48, 48, 3)) * 255).astype(np.uint8)
    assert flow_warp_scores(still)["warp_error"] < 1e-3
    assert flow_warp_scores(noise)["warp_error"] > 0.2
