"""The queue's buttons follow the selection made with the mouse (issue 11, bug 1), and act on several rows at once."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from guihelpers import TINY, create_project
from PySide6.QtCore import Qt


def add_jobs(window: Any, n: int) -> list[str]:
    """Queue ``n`` tiny T2V jobs straight into the project (the service is paused: they stay queued)."""
    from sdk.records import NewJob

    jobs = [NewJob(kind="generate", spec_id="modelscope_t2v.t2v", params=dict(TINY), seed=i, prompt=f"a fox {i}")
            for i in range(n)]
    return list(window.session.project.add_jobs(jobs).job_ids)


def fail_first(window: Any, message: str = "The UNet ran out of memory") -> str:
    """Take the first queued job and fail it as the service would."""
    project = window.session.project
    job = project.claim_next_job()
    project.fail_job(job.id, message, hint="Use a smaller size.", traceback="Traceback (most recent call last): …")
    return job.id


def reload_jobs(qtbot: Any, window: Any, count: int) -> None:
    with qtbot.waitSignal(window.loader.jobs_loaded, timeout=10_000):
        window.session.jobs_changed.emit()
    qtbot.waitUntil(lambda: window.loader.jobs.rowCount() == count, timeout=10_000)


def click_row(qtbot: Any, panel: Any, job_id: str, modifier: Any = Qt.KeyboardModifier.NoModifier) -> None:
    """A real mouse click in the middle of the job's row (its Prompt cell)."""
    from app.models.queue_model import JobTableModel

    row = panel.model.row_of(job_id)
    index = panel.proxy.mapFromSource(panel.model.index(row, JobTableModel.PROMPT))
    rect = panel.view.visualRect(index)
    assert rect.isValid()
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def test_clicking_a_queued_row_enables_cancel_and_move(qtbot: Any, window: Any, tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path, template=None)
    ids = add_jobs(window, 3)
    reload_jobs(qtbot, window, 3)
    panel = window.queue_panel
    assert not panel.cancel_action.isEnabled()
    click_row(qtbot, panel, ids[1])
    assert panel.selected_job().id == ids[1]
    assert panel.cancel_action.isEnabled() and panel.up_action.isEnabled() and panel.down_action.isEnabled()
    assert not panel.retry_action.isEnabled()

    with qtbot.waitSignal(window.loader.jobs_loaded, timeout=10_000):
        panel.up_action.trigger()
    assert [j.id for j in window.loader.jobs.records()][:2] == [ids[1], ids[0]]


def test_clicking_a_failed_row_shows_its_error_and_enables_retry(qtbot: Any, window: Any, tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path, template=None)
    add_jobs(window, 2)
    failed = fail_first(window)
    reload_jobs(qtbot, window, 2)
    panel = window.queue_panel
    click_row(qtbot, panel, failed)
    assert panel.error_box.isVisible()
    assert "ran out of memory" in panel.error_label.text() and "smaller size" in panel.error_label.text()
    assert panel.retry_action.isEnabled() and not panel.cancel_action.isEnabled()
    assert panel.details_button.isEnabled()
