"""Rendering settings: the device the worker runs on and the precision / memory mode new jobs get."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from guihelpers import create_project
from PySide6.QtWidgets import QDialogButtonBox

from app import settings as st
from app.dialogs.render_settings import RenderSettingsDialog


def test_settings_are_kept_and_new_jobs_get_them(qtbot: Any, window: Any, tmp_path: Path, installed_weights: str) -> None:
    dialog = RenderSettingsDialog(window)
    qtbot.addWidget(dialog)
    assert dialog.device.itemData(0) == "auto" and "cpu" in [dialog.device.itemData(i) for i in range(dialog.device.count())]
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.precision.setCurrentIndex(dialog.precision.findData("fp32"))
    dialog.memory_mode.setCurrentIndex(dialog.memory_mode.findData("low"))
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert (st.render_setting("device"), st.render_setting("precision"), st.render_setting("memory_mode")) == \
        ("cpu", "fp32", "low")
    again = RenderSettingsDialog(window)  # reopened: shows what was kept
    qtbot.addWidget(again)
    assert again.memory_mode.currentData() == "low" and again.device.currentData() == "cpu"

    create_project(qtbot, window, tmp_path)
    qtbot.waitUntil(lambda: window.loader.prompts.rowCount() == 3, timeout=10_000)
    window.editor.seeds.setText("1")
    window.editor.submit(False)
    qtbot.waitUntil(lambda: bool(window.session.project.jobs()), timeout=20_000)
    job = window.session.project.jobs()[0]
    assert job.options == {"precision": "fp32", "memory_mode": "low"}
