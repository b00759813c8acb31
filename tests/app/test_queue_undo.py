"""Cancel all, clear queued, clear finished and delete: each undoable from the toast and Edit ▸ Undo for a few
seconds, then final; several jobs selected at once; the status filter tabs (issue 11, queue parity)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from guihelpers import create_project, job_statuses
from PySide6.QtCore import Qt
from test_queue_selection import add_jobs, click_row, fail_first, reload_jobs

CTRL = Qt.KeyboardModifier.ControlModifier


def ids_shown(window: Any) -> list[str]:
    return [j.id for j in window.loader.jobs.records()]


def open_with_jobs(qtbot: Any, window: Any, tmp_path: Path, n: int) -> list[str]:
    create_project(qtbot, window, tmp_path, template=None)
    ids = add_jobs(window, n)
    reload_jobs(qtbot, window, n)
    return ids


def test_clear_queued_then_undo_from_the_toast_brings_every_job_back_in_order(qtbot: Any, window: Any,
                                                                               tmp_path: Path) -> None:
    ids = open_with_jobs(qtbot, window, tmp_path, 3)
    panel = window.queue_panel
    assert panel.clear_queued_action.isEnabled()
    panel.clear_queued_action.trigger()
    qtbot.waitUntil(lambda: ids_shown(window) == [], timeout=10_000)
    assert panel.toast.isVisible() and "3 queued jobs" in panel.toast.label.text()
    assert panel.undo_action.isEnabled() and "Clear queued" in panel.undo_action.text()
    assert window.session.project.claim_next_job() is None  # nothing left to render meanwhile

    qtbot.mouseClick(panel.toast.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ids_shown(window) == ids and job_statuses(window) == ["QUEUED"] * 3, timeout=10_000)
    assert not panel.toast.isVisible() and not panel.undo_action.isEnabled()


def test_cleared_jobs_are_deleted_when_the_undo_expires(qtbot: Any, window: Any, tmp_path: Path) -> None:
    open_with_jobs(qtbot, window, tmp_path, 2)
    window.session.undo.timeout_ms = 300
    window.queue_panel.clear_queued_action.trigger()
    qtbot.waitUntil(lambda: window.session.project.jobs() == [], timeout=10_000)  # gone for good
    assert not window.queue_panel.toast.isVisible()
    with qtbot.waitSignal(window.loader.jobs_loaded, timeout=10_000):
        window.session.jobs_changed.emit()
    assert ids_shown(window) == [] and not window.queue_panel.undo_action.isEnabled()
    assert window.queue_panel.status_tabs.tabText(0) == "All"


def test_clear_finished_is_undone_with_edit_undo(qtbot: Any, window: Any, tmp_path: Path) -> None:
    ids = open_with_jobs(qtbot, window, tmp_path, 3)
    failed = fail_first(window)
    reload_jobs(qtbot, window, 3)
    panel = window.queue_panel
    assert panel.clear_action.isEnabled()
    panel.clear_action.trigger()
    qtbot.waitUntil(lambda: failed not in ids_shown(window), timeout=10_000)
    assert ids_shown(window) == ids[1:]
    assert "Clear finished" in window.edit_menu.actions()[0].text()
    window.edit_menu.actions()[0].trigger()
    qtbot.waitUntil(lambda: ids_shown(window) == ids, timeout=10_000)
    assert window.session.project.job(failed).error_message  # the row was never touched


def test_cancel_all_then_undo(qtbot: Any, window: Any, tmp_path: Path) -> None:
    ids = open_with_jobs(qtbot, window, tmp_path, 3)
    window.queue_panel.cancel_all_action.trigger()
    qtbot.waitUntil(lambda: job_statuses(window) == ["CANCELLED"] * 3, timeout=10_000)
    assert ids_shown(window) == ids  # cancelled, still listed
    window.queue_panel.undo_action.trigger()
    qtbot.waitUntil(lambda: job_statuses(window) == ["QUEUED"] * 3, timeout=10_000)


def test_closing_the_project_makes_a_pending_clear_final(qtbot: Any, window: Any, tmp_path: Path) -> None:
    from sdk.project import Project

    open_with_jobs(qtbot, window, tmp_path, 2)
    path = window.session.path
    window.queue_panel.clear_queued_action.trigger()
    qtbot.waitUntil(lambda: ids_shown(window) == [], timeout=10_000)
    window.close_project()
    with Project.open(path) as project:
        assert project.jobs() == []


def test_ctrl_click_selects_several_jobs_to_cancel_retry_and_delete(qtbot: Any, window: Any, tmp_path: Path) -> None:
    a, b, c, d = open_with_jobs(qtbot, window, tmp_path, 4)
    panel = window.queue_panel
    click_row(qtbot, panel, a)
    click_row(qtbot, panel, c, CTRL)
    assert [j.id for j in panel.selected_jobs()] == [a, c]
    assert panel.cancel_action.text() == "Cancel 2 jobs" and not panel.up_action.isEnabled()
    panel.cancel_action.trigger()
    qtbot.waitUntil(lambda: job_statuses(window) == ["CANCELLED", "QUEUED", "CANCELLED", "QUEUED"], timeout=10_000)

    assert panel.retry_action.isEnabled() and panel.retry_action.text() == "Retry 2 jobs"
    panel.retry_action.trigger()  # both go to the end, in their order
    qtbot.waitUntil(lambda: ids_shown(window) == [b, d, a, c], timeout=10_000)
    assert job_statuses(window) == ["QUEUED"] * 4

    click_row(qtbot, panel, b)
    click_row(qtbot, panel, a, CTRL)
    window.activateWindow()  # shortcuts work in the active window
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    panel.view.setFocus()
    qtbot.keyClick(panel.view, Qt.Key.Key_Delete)  # Delete while the queue has the focus
    qtbot.waitUntil(lambda: ids_shown(window) == [d, c], timeout=10_000)
    assert "Deleted 2 jobs" in panel.toast.label.text()
    qtbot.mouseClick(panel.toast.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ids_shown(window) == [b, d, a, c] and job_statuses(window) == ["QUEUED"] * 4,
                    timeout=10_000)


def test_status_tabs_filter_the_list_and_count_each_status(qtbot: Any, window: Any, tmp_path: Path) -> None:
    ids = open_with_jobs(qtbot, window, tmp_path, 3)
    failed = fail_first(window)
    reload_jobs(qtbot, window, 3)
    panel = window.queue_panel
    tabs = panel.status_tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["All (3)", "Queued (2)", "Running", "Failed (1)",
                                                              "Done"]
    qtbot.mouseClick(tabs, Qt.MouseButton.LeftButton, pos=tabs.tabRect(3).center())
    assert panel.proxy.rowCount() == 1
    click_row(qtbot, panel, failed)
    assert panel.error_box.isVisible() and panel.retry_action.isEnabled()
    qtbot.mouseClick(tabs, Qt.MouseButton.LeftButton, pos=tabs.tabRect(1).center())
    assert panel.proxy.rowCount() == 2 and not panel.error_box.isVisible()
    assert {panel.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 1).id for r in range(2)} == set(ids[1:])
