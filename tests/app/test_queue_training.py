"""Training jobs in the queue: rows that say what trains (issue 11 #5), cancelling step 1 of a composite training
cancels step 2 (#4), and the preview shows a running training's step, loss and samples (#8)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from guihelpers import create_project, job_statuses
from PySide6.QtCore import Qt
from test_queue_selection import click_row
from test_training import _add_subject

from app.models.queue_model import JobTableModel, WaitingRole


def _cell(window: Any, job_id: str, column: int, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
    model = window.loader.jobs
    return model.index(model.row_of(job_id), column).data(role)


def _queue_subject_training(qtbot: Any, window: Any, tmp_path: Path) -> tuple[Any, list[Any]]:
    create_project(qtbot, window, tmp_path, template=None)
    subject = _add_subject(qtbot, window, tmp_path, name="Rex")
    page = window.sidebar.subjects_page
    qtbot.waitUntil(page.train_action.isEnabled)
    page.train_button.click()  # asks the training's settings first; the defaults are VGen's
    qtbot.waitUntil(lambda: page.train_dialog is not None and page.train_dialog.isVisible(), timeout=10_000)
    with qtbot.waitSignal(window.session.jobs_queued, timeout=30_000):
        page.train_dialog.accept()
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 2, timeout=10_000)
    return subject, sorted(window.loader.jobs.records(), key=lambda j: j.position)


def test_training_rows_name_the_subject_and_the_step(qtbot: Any, window: Any, installed_dreamvideo_weights: str,
                                                     tmp_path: Path) -> None:
    _, (step1, step2) = _queue_subject_training(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: _cell(window, step1.id, JobTableModel.PROMPT).startswith("Rex"), timeout=10_000)
    assert _cell(window, step1.id, JobTableModel.PROMPT) == "Rex · step 1/2 · 3000 steps"
    assert _cell(window, step2.id, JobTableModel.PROMPT) == "Rex · step 2/2 · 1000 steps"
    assert _cell(window, step2.id, JobTableModel.STATUS) == "Waiting"
    assert _cell(window, step2.id, 0, WaitingRole) == [step1.id]
    assert _cell(window, step1.id, JobTableModel.METHOD) == "DreamVideo"


def test_cancelling_queued_step1_cancels_step2_and_nothing_runs(qtbot: Any, window: Any,
                                                                installed_dreamvideo_weights: str,
                                                                tmp_path: Path) -> None:
    _, (step1, step2) = _queue_subject_training(qtbot, window, tmp_path)
    panel = window.queue_panel
    click_row(qtbot, panel, step1.id)
    assert panel.cancel_action.isEnabled()
    with qtbot.waitSignal(window.loader.jobs_loaded, timeout=10_000):
        panel.cancel_action.trigger()
    qtbot.waitUntil(lambda: job_statuses(window) == ["CANCELLED", "CANCELLED"], timeout=10_000)
    assert "was cancelled" in (window.loader.jobs.record(1).error_message or "")

    started: list[str] = []
    window.session.bridge.job_started.connect(started.append)
    window.queue_panel.start_action.trigger()  # the queue runs: nothing is left to start
    qtbot.waitUntil(lambda: window.session.state == "running", timeout=30_000)
    with qtbot.waitSignal(window.loader.jobs_loaded, timeout=10_000):
        window.session.jobs_changed.emit()
    assert started == [] and job_statuses(window) == ["CANCELLED", "CANCELLED"]


@pytest.mark.slow
def test_a_running_training_shows_loss_and_samples_and_cancelling_it_cancels_step2(
        qtbot: Any, window: Any, installed_dreamvideo_weights: str, tmp_path: Path) -> None:
    session = create_project(qtbot, window, tmp_path, template=None)
    subject = _add_subject(qtbot, window, tmp_path, name="Rex")
    tiny = {"max_train_steps": 400, "validation_steps": 2, "checkpointing_steps": 400, "height": 32, "width": 32,
            "train_batch_size": 1, "sample_steps": 1, "sample_num_frames": 4}
    started: list[str] = []
    session.bridge.job_started.connect(started.append)
    with qtbot.waitSignal(session.jobs_queued, timeout=30_000):
        session.queue("dreamvideo.subject", start=True, kind="train", subject=subject.id, params=tiny)
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 2, timeout=10_000)
    step1, step2 = sorted(window.loader.jobs.records(), key=lambda j: j.position)

    preview = window.preview
    qtbot.waitUntil(lambda: preview.job_id == step1.id and preview.loss is not None, timeout=180_000)
    assert "Rex · step 1/2 · 400 steps" in preview.title.text()
    assert preview.loss_plot.isVisible() and "loss" in preview.status.text()
    assert "No job is rendering" not in preview.player.placeholder
    qtbot.waitUntil(lambda: preview.player.frame_count > 0, timeout=120_000)  # a sample video
    assert preview.progress.isVisible() and preview.progress.maximum() == 400

    click_row(qtbot, window.queue_panel, step1.id)
    with qtbot.waitSignal(session.bridge.job_cancelled, timeout=60_000):
        window.queue_panel.cancel_action.trigger()
    qtbot.waitUntil(lambda: job_statuses(window) == ["CANCELLED", "CANCELLED"], timeout=30_000)
    assert started == [step1.id]  # step 2 never ran
