"""The evaluation board (sdk.evaluation) and `vgen batch report`: outputs × metrics, each metric's own direction
(classic_cv.flow_warp is an error: lower is better), best per prompt and per subject with ties and missing scores,
the best seed, score vs a step axis and its peak — on a grid rendered and scored by the real worker."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from sdk.cli import main as vgen
from sdk.errors import InvalidRequest
from sdk.evaluation import Board, BoardRow, MetricColumn, build_board
from sdk.evaluation_report import render, summary
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.testing.install import pythonpath_with
from tests.sdk.evaluation_helpers import SEEDS, STEPS, eval_site, expected_clean, render_scored_grid  # noqa: F401


def row(job: str, seed: int, scores: dict, prompt: str = "a fox", subject: str | None = None, step: int = 0,
        problems: dict | None = None) -> BoardRow:
    return BoardRow(job_id=job * 12, spec_id="t.gen", prompt=prompt, subject=subject, seed=seed,
                    params={"identity_step": step}, axes={"identity_step": float(step)}, scores=scores,
                    problems=problems or {})


LOWER = MetricColumn("classic_cv.flow_warp", "Warp error", higher_is_better=False)
HIGHER = MetricColumn("t.clip", "CLIP", higher_is_better=True)


def test_best_follows_each_metrics_direction_and_keeps_ties_and_skips_missing_scores() -> None:
    board = Board(rows=(
        row("a", 1, {LOWER.id: 0.30, HIGHER.id: 0.9}, subject="dog"),
        row("b", 2, {LOWER.id: 0.10, HIGHER.id: 0.5}, subject="dog"),
        row("c", 3, {LOWER.id: 0.10, HIGHER.id: None}, subject="cat", problems={HIGHER.id: "values is dict"}),
        row("d", 4, {}, prompt="a cat", subject="cat"),  # not scored yet
        row("e", 5, {LOWER.id: 0.50}, prompt="a cat"),  # no subject
    ), metrics=(LOWER, HIGHER))
    # lower is better for the warp error: b and c tie at 0.10 and both are best
    assert [r.job_id[0] for r in board.best_rows(LOWER.id)] == ["b", "c"]
    assert [r.job_id[0] for r in board.best_rows(HIGHER.id)] == ["a"]
    per_prompt = board.best_per("prompt", LOWER.id)
    assert {k: [r.job_id[0] for r in v] for k, v in per_prompt.items()} == {"a fox": ["b", "c"], "a cat": ["e"]}
    per_subject = board.best_per("subject", HIGHER.id)  # cat's only score is invalid: no best for cat
    assert {k: [r.job_id[0] for r in v] for k, v in per_subject.items()} == {"dog": ["a"]}
    assert board.best_seed(LOWER.id) == 2  # a tie between seeds 2 and 3 goes to the smaller seed
    assert board.best_seed(HIGHER.id) == 1
    with pytest.raises(InvalidRequest, match="No scores of metric 'x.y'") as err:
        board.best_rows("x.y")
    assert err.value.field == "metric" and "classic_cv.flow_warp" in err.value.hint
    # the table marks the invalid score and leaves the missing one empty; unscored rows sort last
    header, *cells = list(csv.reader(io.StringIO(render(board, "csv", metric=LOWER.id))))
    assert header[-3:] == ["classic_cv.flow_warp (↓)", "t.clip (↑)", "best"]
    assert [c[0][0] for c in cells] == ["b", "c", "a", "e", "d"]
    assert cells[1][-2] == "INVALID" and cells[4][-3:] == ["", "", ""]
    assert [c[-1] for c in cells] == ["PS", "PS", "", "P", ""]  # b: dog; c: cat (d, the other cat, has no score)


def test_the_step_curve_averages_over_seeds_and_peaks_by_direction() -> None:
    rows = tuple(row(f"{s}{t}"[:1] + chr(97 + i), s, {LOWER.id: err, HIGHER.id: -err}, step=t)
                 for i, (s, t, err) in enumerate([(1, 100, 0.4), (2, 100, 0.6), (1, 200, 0.2), (2, 200, 0.3),
                                                  (1, 300, 0.5), (2, 300, 0.2)]))
    board = Board(rows=rows, metrics=(LOWER, HIGHER))
    assert board.axes() == ["identity_step"] and board.step_axis() == "identity_step"
    curve = board.step_curve(LOWER.id)
    assert [(p.step, round(p.mean, 6), p.count) for p in curve.points] == [(100, 0.5, 2), (200, 0.25, 2),
                                                                          (300, 0.35, 2)]
    assert curve.peak.step == 200
    assert board.step_curve(HIGHER.id).peak.step == 200  # the same data, the other direction
    assert "Best step: identity_step=200 (mean 0.25 over 2)" in summary(board, LOWER.id)
    flat = Board(rows=(row("a", 1, {LOWER.id: 0.1}), row("b", 2, {LOWER.id: 0.2})), metrics=(LOWER,))
    with pytest.raises(InvalidRequest, match="Nothing varies") as err:
        flat.step_curve(LOWER.id)
    assert err.value.field == "axis"
    assert not any(line.startswith("Best step") for line in summary(flat))


@pytest.fixture
def registry(eval_site: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", pythonpath_with(eval_site))
    monkeypatch.syspath_prepend(str(eval_site))
    yield load_plugins(refresh=True)
    load_plugins(refresh=True)


@pytest.mark.slow
def test_a_scored_grid_names_the_best_seed_and_step_in_the_board_and_every_report(registry, tmp_path: Path,
                                                                                   capsys) -> None:
    with Project.create(tmp_path / "Eval.vgen") as project:
        batch = render_scored_grid(project, registry)
        board = build_board(project, batch[:6], registry=registry)
        assert board.batch_id == batch and len(board.rows) == len(SEEDS) * len(STEPS)
        assert [(m.id, m.higher_is_better) for m in board.metrics] == [("classic_cv.flow_warp", False),
                                                                      ("evaltest.clean", True)]
        for r in board.rows:  # the worker's scores, as stored
            assert r.score("evaltest.clean") == pytest.approx(expected_clean(r.seed, r.params["identity_step"]))
            [fw] = project.scores(r.job_id, metric="classic_cv.flow_warp")
            assert r.score("classic_cv.flow_warp") == fw.score
        assert board.best_seed("evaltest.clean") == 1
        assert board.step_curve("evaltest.clean").peak.step == 200
        # the warp error is lower-is-better: its best is the smallest stored error
        errors = {r.job_id: r.score("classic_cv.flow_warp") for r in board.rows}
        assert [r.job_id for r in board.best_rows("classic_cv.flow_warp")] == [min(errors, key=errors.get)]
        seed_err = {s: sum(v for j, v in errors.items() if project.job(j).seed == s) for s in SEEDS}
        assert board.best_seed("classic_cv.flow_warp") == min(seed_err, key=seed_err.get)
        [best_clean] = board.best_rows("evaltest.clean")
        assert (best_clean.seed, best_clean.params["identity_step"]) == (1, 200)

    path = str(tmp_path / "Eval.vgen")
    assert vgen(["batch", "report", path, batch[:8], "--metric", "evaltest.clean"]) == 0
    md = capsys.readouterr().out
    assert "Best seed: 1 (mean" in md and "Best step: identity_step=200" in md
    assert f"Best for prompt (none): {best_clean.job_id[:8]} (" in md
    assert "| job | prompt | subject | seed | identity_step | classic_cv.flow_warp (↓) | evaltest.clean (↑) | best |" in md
    assert md.count(f"| {best_clean.job_id[:8]} |") == 1
    out = tmp_path / "board.csv"
    assert vgen(["batch", "report", path, batch, "--format", "csv", "--metric", "evaltest.clean",
                 "--out", str(out)]) == 0
    assert "Wrote the csv report" in capsys.readouterr().out
    first = list(csv.DictReader(out.open()))[0]
    assert first["job"] == best_clean.job_id[:8] and first["seed"] == "1" and first["best"] == "P"
    page = tmp_path / "board.html"
    assert vgen(["batch", "report", path, batch, "--format", "html", "--out", str(page)]) == 0
    text = page.read_text()
    thumbs = re.findall(r'<img alt="[0-9a-f]{8}" src="data:image/png;base64,', text)
    assert len(thumbs) == len(SEEDS) * len(STEPS)
    assert '<img class="chart" alt="classic_cv.flow_warp vs identity_step" src="data:image/png;base64,' in text
    assert "Metric: classic_cv.flow_warp (lower is better)" in text and "Best step: identity_step=200" in text

    assert vgen(["batch", "report", path, "ffffffff"]) == 2
    assert "is no batch of this project" in capsys.readouterr().err
    assert vgen(["batch", "report", path, batch, "--metric", "vgen_metrics.clip_t"]) == 2
    err = capsys.readouterr().err
    assert "No scores of metric 'vgen_metrics.clip_t'" in err and "evaltest.clean" in err
