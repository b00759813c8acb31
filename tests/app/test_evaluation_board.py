"""The evaluation board, opened from the gallery ("Evaluate batch…") on a grid rendered and scored by the real
worker: a sortable table with thumbnails and one column per metric, the best output highlighted, the best seed and
the best step named, the score-vs-step chart; new scores (queued and rendered while it is open) show up on their
own, and ranking by a lower-is-better metric picks its smallest value."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gallery_helpers import click, open_project
from PySide6.QtCore import QPoint, Qt

from sdk.conditions import score_jobs
from sdk.plugins import load_plugins
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.service import RenderService
from sdk.testing.install import pythonpath_with
from tests.sdk.evaluation_helpers import SEEDS, STEPS, eval_site  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def eval_window(eval_site: Path, monkeypatch: pytest.MonkeyPatch, qtbot: Any) -> Any:  # noqa: F811
    monkeypatch.setenv("PYTHONPATH", pythonpath_with(eval_site))
    monkeypatch.syspath_prepend(str(eval_site))
    load_plugins(refresh=True)
    from app.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.plugins_loaded, timeout=30_000):
        win.load_plugins()
    assert "evaltest.noisy" in win.registry.generators
    yield win
    win.close()
    load_plugins(refresh=True)


def header_click(qtbot: Any, board: Any, name: str) -> None:
    header = board.table.horizontalHeader()
    col = board.columns().index(name)
    centre = QPoint(header.sectionViewportPosition(col) + header.sectionSize(col) // 2, header.height() // 2)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=centre)


def seeds_shown(board: Any, project: Project) -> list[int]:
    return [project.job(j).seed for j in board.shown_job_ids()]


def test_the_board_ranks_a_scored_grid_and_follows_new_scores(qtbot: Any, eval_window: Any, tmp_path: Path) -> None:
    path = tmp_path / "Board.vgen"
    with Project.create(path) as project:  # evaltest.clean scores every output on its own (an auto metric)
        batch = queue_jobs(project, eval_window.registry, "evaltest.noisy", params={"identity_step": list(STEPS)},
                           seeds=",".join(map(str, SEEDS)))
        assert RenderService(project, registry=eval_window.registry).run(until_empty=True)["failed"] == 0
        clean = {j: project.scores(j, metric="evaltest.clean")[0].score for j in batch.job_ids}
    best = max(clean, key=clean.get)
    session = open_project(qtbot, eval_window, path, len(batch.job_ids))
    project = session.project
    assert (project.job(best).seed, project.job(best).params["identity_step"]) == (1, 200)

    gallery = eval_window.gallery
    assert not gallery.evaluate_action.isEnabled(), "no output selected, no batch filter"
    click(qtbot, gallery, batch.job_ids[3])
    assert gallery.evaluate_action.isEnabled() and gallery.evaluate_action in gallery.menu.actions()
    qtbot.mouseClick(gallery.buttons["Evaluate batch…"], Qt.MouseButton.LeftButton)
    board = gallery.board
    assert board is not None and board.isVisible() and not board.isModal()
    qtbot.waitUntil(lambda: board.loads >= 1, timeout=20_000)

    assert board.columns() == ["output", "prompt", "subject", "seed", "identity_step", "evaltest.clean ↑"]
    shown = board.shown_job_ids()
    assert shown[0] == best and [clean[j] for j in shown] == sorted(clean.values(), reverse=True)
    assert board.highlighted_job_ids() == {best}
    text = board.summary.text()
    assert "Best seed: 1 (mean" in text and "Best step: identity_step=200" in text
    assert board.axis_box.currentText() == "identity_step"
    assert board.chart.pixmap() is not None and not board.chart.pixmap().isNull()
    assert board.chart.pixmap().width() > 300
    for r in range(board.proxy.rowCount()):  # a thumbnail per output: its middle frame
        thumb = board.proxy.index(r, 0).data(Qt.ItemDataRole.DecorationRole)
        assert thumb is not None and not thumb.isNull() and max(thumb.width(), thumb.height()) == 32

    # sortable: a click on "seed" sorts by it, another reverses it
    header_click(qtbot, board, "seed")
    assert seeds_shown(board, project) == sorted(seeds_shown(board, project))
    header_click(qtbot, board, "seed")
    assert seeds_shown(board, project) == sorted(seeds_shown(board, project), reverse=True)

    # new scores arrive while it is open: a column of their own, without reopening
    score_jobs(project, session.registry, ["classic_cv.flow_warp"], jobs=list(batch.job_ids))
    session.start_queue()
    qtbot.waitUntil(lambda: "classic_cv.flow_warp ↓" in board.columns(), timeout=60_000)
    qtbot.waitUntil(lambda: all(project.scores(j, metric="classic_cv.flow_warp") for j in batch.job_ids)
                    and board.proxy.index(0, board.columns().index("classic_cv.flow_warp ↓")).data() != "", timeout=60_000)
    qtbot.waitUntil(lambda: all(board.proxy.index(r, board.columns().index("classic_cv.flow_warp ↓")).data()
                                for r in range(board.proxy.rowCount())), timeout=30_000)
    errors = {j: project.scores(j, metric="classic_cv.flow_warp")[0].score for j in batch.job_ids}

    # rank by the warp error (lower is better): its smallest value is the best
    loads = board.loads
    board.metric_box.setFocus()
    qtbot.keyClick(board.metric_box, Qt.Key.Key_Home)  # the metrics are listed by id: flow_warp first
    qtbot.waitUntil(lambda: board.loads > loads, timeout=20_000)
    assert board.rank_metric == "classic_cv.flow_warp"
    assert board.highlighted_job_ids() == {min(errors, key=errors.get)}
    assert "Metric: classic_cv.flow_warp (lower is better)" in board.summary.text()

    board.close()  # closed, it stops following the project
    session.jobs_changed.emit()
    assert not board._timer.isActive()
