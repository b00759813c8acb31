"""Notifications when a batch finishes or a job fails, the failed count in the title bar, and the setting that turns
the pop-ups off (issue 11, notifications)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from guihelpers import create_project, job_statuses, set_tiny_params
from test_queue_selection import add_jobs, fail_first, reload_jobs


def test_a_failed_job_and_then_its_finished_batch_are_notified(qtbot: Any, window: Any, tmp_path: Path) -> None:
    from app import notifications

    assert notifications.enabled()
    create_project(qtbot, window, tmp_path, template=None, name="Birds")
    add_jobs(window, 2)
    reload_jobs(qtbot, window, 2)
    assert window.windowTitle() == "Birds — VGen Studio"

    with qtbot.waitSignal(window.notifier.notified, timeout=10_000) as first:
        fail_first(window, "The UNet ran out of memory")
        window.session.jobs_changed.emit()
    title, message, where = first.args
    assert title == "Job failed — Birds" and "ran out of memory" in message and "a fox 0" in message
    assert where in ("tray", "desktop", "status")
    assert window.windowTitle() == "Birds (1 failed) — VGen Studio"

    with qtbot.waitSignal(window.notifier.notified, timeout=10_000) as second:
        fail_first(window, "The disk is full")
        window.session.jobs_changed.emit()
    assert second.args[0] == "Batch finished — Birds" and second.args[1].startswith("2 failed.")
    assert window.windowTitle() == "Birds (2 failed) — VGen Studio"

    # clearing the failed jobs clears the count
    window.queue_panel.clear_action.trigger()
    qtbot.waitUntil(lambda: window.windowTitle() == "Birds — VGen Studio", timeout=10_000)


def test_the_setting_turns_the_popups_off(qtbot: Any, window: Any, tmp_path: Path) -> None:
    from app import notifications, settings

    notifications.set_enabled(False)
    assert settings.settings().value(notifications.KEY) in (False, "false")
    create_project(qtbot, window, tmp_path, template=None, name="Birds")
    add_jobs(window, 1)
    reload_jobs(qtbot, window, 1)
    window.statusBar().clearMessage()
    with qtbot.waitSignal(window.notifier.notified, timeout=10_000) as sent:
        fail_first(window)
        window.session.jobs_changed.emit()
    assert sent.args[2] == "off" and window.statusBar().currentMessage() == ""
    assert window.windowTitle() == "Birds (1 failed) — VGen Studio"  # the count stays
    notifications.set_enabled(True)
    assert notifications.enabled()


@pytest.mark.slow
def test_a_rendered_batch_notifies_when_it_finishes(qtbot: Any, window: Any, installed_weights: str,
                                                   tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path, name="Birds")
    qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 3, timeout=10_000)
    window.editor.select_prompt_text("a paper boat drifting down a rainy street")
    set_tiny_params(window)
    window.editor.seeds.setText("1,2")
    with qtbot.waitSignal(window.notifier.notified, timeout=240_000) as sent:
        assert window.editor.submit(start=True)
    assert job_statuses(window) == ["SUCCEEDED", "SUCCEEDED"]
    assert sent.args[:2] == ["Batch finished — Birds", "2 done."]
