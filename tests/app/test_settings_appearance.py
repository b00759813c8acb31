"""Settings ▸ Appearance: follow the system, light or dark. Dark is Qt's own styling (the Fusion style and a dark
palette for the whole application, no stylesheet per widget); it applies at once, and at start-up before the first
window is painted."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from app import application
from app import settings as st

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_look(qapp: QApplication) -> Iterator[None]:
    """The palette and style are application-wide: give the next test the ones it had."""
    app = qapp
    style, palette = app.style().name(), app.palette()
    yield
    from PySide6.QtWidgets import QStyleFactory

    app.setStyle(QStyleFactory.create(style))
    app.setPalette(palette)
    application._platform_look = None


def is_dark(palette: QPalette) -> bool:
    return palette.window().color().lightness() < 100 and palette.windowText().color().lightness() > 180


def test_dark_and_light_apply_at_once_and_are_kept(qtbot: Any, window: Any) -> None:
    window.show_settings("Appearance")
    dialog = window.settings_dialog
    assert dialog.theme_buttons["system"].isChecked()  # the default
    dark = dialog.theme_buttons["dark"]
    qtbot.mouseClick(dark, Qt.MouseButton.LeftButton, pos=QPoint(8, dark.height() // 2))  # on its circle
    assert dark.isChecked()
    dialog.buttons.button(QDialogButtonBox.StandardButton.Apply).click()
    app = QApplication.instance()
    assert st.theme() == "dark" and app.style().name().lower() == "fusion"
    assert is_dark(app.palette())
    qtbot.waitUntil(lambda: is_dark(window.palette()) and is_dark(window.editor.palette()), timeout=5_000)
    # text stays readable everywhere: bases and text differ, disabled text is dimmer than enabled text
    pal = app.palette()
    assert abs(pal.base().color().lightness() - pal.text().color().lightness()) > 150
    assert pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text).lightness() < pal.text().color().lightness()
    assert window.editor.styleSheet() == "" and window.styleSheet() == "" and app.styleSheet() == ""

    dialog.theme_buttons["light"].click()
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert st.theme() == "light" and not is_dark(app.palette())
    assert app.palette().window().color().lightness() > 200

    window.show_settings("Appearance")
    assert window.settings_dialog.theme_buttons["light"].isChecked()  # reopened: shows what was kept
    window.settings_dialog.reject()


STARTUP = """
import sys
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[1])
app = QApplication(sys.argv[:1])
from app import settings as st
st.set_theme("dark")


def first_window_shown():  # the first event after run() showed the window, before its start-up probe quits
    for w in QApplication.topLevelWidgets():
        if w.objectName() == "mainWindow" and w.isVisible():
            print("WINDOW", w.palette().window().color().lightness(), w.palette().windowText().color().lightness(),
                  app.style().name())


QTimer.singleShot(0, first_window_shown)
from app.application import run
sys.exit(run([]))
"""


def test_the_theme_applies_before_the_first_window(tmp_path: Path) -> None:
    # a process of its own: the app's start-up runs (and ends) its own event loop
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    env[application.STARTUP_PROBE_ENV] = "1"  # run() shows the window, then quits
    out = subprocess.run([sys.executable, "-c", STARTUP, str(tmp_path / "settings")], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    [line] = [ln for ln in out.stdout.splitlines() if ln.startswith("WINDOW ")]
    window_lightness, text_lightness, style = line.split()[1:]
    assert int(window_lightness) < 100 and int(text_lightness) > 180 and style.lower() == "fusion"


def test_follow_system_uses_the_desktops_scheme(qtbot: Any) -> None:
    app = QApplication.instance()
    assert application.apply_theme(app, "system") == ("dark" if application.system_is_dark(app) else "light")
    assert application.apply_theme(app, "dark") == "dark" and is_dark(app.palette())
    # back to the system: the platform's own style and palette, not our dark one (this desktop is light)
    if not application.system_is_dark(app):
        assert application.apply_theme(app, "system") == "light" and not is_dark(app.palette())
