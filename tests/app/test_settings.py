"""Settings ▸ Rendering (issue 9's device, precision and memory mode; bug 9 of issue 11): the choices are kept, new
jobs get them, the worker runs on the chosen device and a new one applies without reopening the project, and the
machine's devices are listed without torch."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from guihelpers import create_project
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from app import settings as st
from app.dialogs.settings import SettingsDialog


def open_settings(qtbot: Any, window: Any, page: str = "Rendering") -> SettingsDialog:
    """Tools ▸ Settings… as the user opens it (the menu action), on ``page``."""
    action = next(a for m in window.menuBar().actions() if m.menu() is not None for a in m.menu().actions()
                  if a.text() == "&Settings…")
    action.trigger()
    dialog = window.settings_dialog
    assert dialog is not None and dialog.isVisible()
    if page:
        dialog.show_page(page)
    qtbot.waitUntil(lambda: "Looking for devices" not in dialog.machine.text(), timeout=10_000)  # the probe answered
    return dialog


def click(dialog: SettingsDialog, button: QDialogButtonBox.StandardButton) -> None:
    dialog.buttons.button(button).click()


def test_settings_are_kept_and_new_jobs_get_them(qtbot: Any, window: Any, tmp_path: Path, installed_weights: str) -> None:
    dialog = open_settings(qtbot, window)
    devices = [dialog.device.itemData(i) for i in range(dialog.device.count())]
    assert devices[0] == "auto" and "cpu" in devices
    assert "cpu" in dialog.machine.text() and "GB total" in dialog.machine.text()  # what vgen doctor says, torch-free
    assert "ffmpeg" in dialog.machine.text()
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.precision.setCurrentIndex(dialog.precision.findData("fp32"))
    dialog.memory_mode.setCurrentIndex(dialog.memory_mode.findData("low"))
    click(dialog, QDialogButtonBox.StandardButton.Ok)
    assert (st.render_setting("device"), st.render_setting("precision"), st.render_setting("memory_mode")) == \
        ("cpu", "fp32", "low")
    again = open_settings(qtbot, window)  # reopened: shows what was kept
    assert again.memory_mode.currentData() == "low" and again.device.currentData() == "cpu"
    click(again, QDialogButtonBox.StandardButton.Cancel)

    create_project(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 3, timeout=10_000)
    assert window.session.service.executor.device == "cpu"  # the worker starts on the chosen device
    window.editor.seeds.setText("1")
    window.editor.submit(False)
    qtbot.waitUntil(lambda: bool(window.session.project.jobs()), timeout=20_000)
    job = window.session.project.jobs()[0]
    assert job.options == {"precision": "fp32", "memory_mode": "low"}


def test_a_device_this_machine_lacks_is_named_and_a_new_device_applies_at_once(qtbot: Any, window: Any,
                                                                               tmp_path: Path) -> None:
    # settings brought from a GPU machine: the queue cannot start, and says why, naming the devices there are
    st.set_render_setting("device", "cuda:1")
    with qtbot.waitSignal(window.error_shown, timeout=30_000) as shown:
        window.create_project(tmp_path / "Moved.vgen", "demo")
    title, message = shown.args
    assert title == "Cannot start rendering" and "cuda:1" in message
    box = window.findChild(QMessageBox, "errorBox")
    assert "cpu" in box.informativeText()  # the hint lists this machine's devices
    box.close()
    assert window.session.state == "stopped" and window.session.service is None

    dialog = open_settings(qtbot, window)
    assert dialog.device.currentData() == "cuda:1" and "not on this machine" in dialog.device.currentText()
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    with qtbot.waitSignal(window.session.render_state_changed, timeout=30_000):
        click(dialog, QDialogButtonBox.StandardButton.Ok)  # no reopening: the service starts on the CPU
    assert window.session.state == "paused" and window.session.service.executor.device == "cpu"

    # a running service moves too (nothing renders, so it restarts at once) and stays paused
    old = window.session.service
    dialog = open_settings(qtbot, window)
    dialog.device.setCurrentIndex(dialog.device.findData("auto"))
    click(dialog, QDialogButtonBox.StandardButton.Apply)
    qtbot.waitUntil(lambda: window.session.service is not None and window.session.service is not old, timeout=30_000)
    assert window.session.service.executor.device == "auto" and window.session.state == "paused"
    assert not old.running
    click(dialog, QDialogButtonBox.StandardButton.Cancel)


def test_export_folder_and_notifications_are_kept(qtbot: Any, window: Any, tmp_path: Path) -> None:
    dialog = open_settings(qtbot, window, "General")
    assert dialog.notifications.isChecked()  # on by default
    exports = tmp_path / "exports"
    exports.mkdir()
    dialog.export_folder.clear()
    qtbot.keyClicks(dialog.export_folder, str(exports))
    dialog.notifications.click()
    click(dialog, QDialogButtonBox.StandardButton.Ok)
    assert st.export_folder() == exports
    assert st.settings().value(st.NOTIFICATIONS_KEY) in (False, "false")  # the key app.notifications reads
    again = open_settings(qtbot, window, "General")
    assert not again.notifications.isChecked() and again.export_folder.text() == str(exports)
    click(again, QDialogButtonBox.StandardButton.Cancel)
    exports.rmdir()  # a folder that went away: exports fall back to ~/Videos or home, never to a missing folder
    assert st.export_folder() != exports and st.export_folder().is_dir()
