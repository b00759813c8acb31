"""Queue rows of jobs without a prompt say what they work on: an extraction's and a score's title and inputs (issue 11
#5, beside the training rows of test_queue_training.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from guihelpers import create_project
from test_queue_selection import add_jobs
from test_training import _add_motion

from app.models.queue_model import JobTableModel


def test_extract_and_score_rows_name_their_inputs(qtbot: Any, window: Any, tmp_path: Path) -> None:
    session = create_project(qtbot, window, tmp_path, template=None)
    motion = _add_motion(qtbot, window, tmp_path)
    [generate] = add_jobs(window, 1)
    with qtbot.waitSignal(session.jobs_queued, timeout=30_000):
        session.queue("classic_cv.canny", inputs={"video": motion.name})
    with qtbot.waitSignal(session.jobs_queued, timeout=30_000):
        session.queue("classic_cv.flow_warp", inputs={"output": generate})
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 3, timeout=10_000)
    model = window.loader.jobs
    rows = {j.kind: model.index(model.row_of(j.id), JobTableModel.PROMPT).data() for j in model.records()}
    assert rows["generate"] == "a fox 0"
    assert rows["extract"] == f"Canny edges · {motion.name} video"
    assert rows["score"] == f"Flow warping error (temporal consistency) · output of {generate[:8]}"
    score = next(j for j in model.records() if j.kind == "score")
    assert model.index(model.row_of(score.id), JobTableModel.STATUS).data() == "Waiting"  # for the output it scores
