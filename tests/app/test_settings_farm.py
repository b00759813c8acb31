"""Settings ▸ Rendering ▸ Render farm (issue 16): the address is kept, the GUI's queue runner uses it, and an
unreachable farm says so at once instead of rendering nothing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox
from test_settings import click, open_settings

from app import settings as st

pytest.importorskip("ray", reason="the farm extra is not installed (pip install 'vgen-studio[farm]')")


def test_an_unreachable_render_farm_is_named_when_the_queue_starts(qtbot: Any, window: Any, tmp_path: Path) -> None:
    dialog = open_settings(qtbot, window)
    assert dialog.farm.text() == ""  # empty: this machine
    qtbot.keyClicks(dialog.farm, "ray://127.0.0.1:9")
    click(dialog, QDialogButtonBox.StandardButton.Ok)
    assert st.render_setting("farm") == "ray://127.0.0.1:9"

    with qtbot.waitSignal(window.error_shown, timeout=30_000) as shown:
        window.create_project(tmp_path / "Farm.vgen", "demo")
    title, message = shown.args
    assert title == "Cannot start rendering" and "nothing answers at 127.0.0.1:9" in message
    window.findChild(QMessageBox, "errorBox").close()
    assert window.session.state == "stopped" and window.session.service is None

    again = open_settings(qtbot, window)
    assert again.farm.text() == "ray://127.0.0.1:9"
    again.farm.clear()  # back to this machine: the queue starts here, no reopening
    with qtbot.waitSignal(window.session.render_state_changed, timeout=30_000):
        click(again, QDialogButtonBox.StandardButton.Ok)
    assert window.session.state == "paused" and window.session.service.executor.device != ""
