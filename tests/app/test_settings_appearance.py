"""Settings ▸ Appearance: follow the system, light or dark. Dark is Qt's own styling (the Fusion style and a dark
palette for the whole application, no stylesheet per widget); it applies at once, and at start-up before the first
window is painted."""
from __future__ import annotations

import sys
from typing import Any, Iterator

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from app import application
from app import settings as st


@pytest.fixture(autouse=True)
def _restore_look() -> Iterator[None]:
    """The palette and style are application-wide: give the next test the ones it had."""
    app = QApplication.instance()
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


def test_the_theme_applies_before_the_first_window(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    st.set_theme("dark")
    monkeypatch.setenv(application.STARTUP_PROBE_ENV, "1")  # run() shows the window, then quits its loop
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # run() installs its own
    seen: list[bool] = []

    def first_window_shown() -> None:  # the first event after the window is shown, before the probe quits
        windows = [w for w in QApplication.topLevelWidgets() if w.objectName() == "mainWindow" and w.isVisible()]
        seen.extend(is_dark(w.palette()) for w in windows)

    QTimer.singleShot(0, first_window_shown)
    assert application.run([]) == 0
    for w in QApplication.topLevelWidgets():
        if w.objectName() == "mainWindow":
            w.close()
            w.deleteLater()
    assert seen == [True]


def test_follow_system_uses_the_desktops_scheme(qtbot: Any) -> None:
    app = QApplication.instance()
    assert application.apply_theme(app, "system") == ("dark" if application.system_is_dark(app) else "light")
    assert application.apply_theme(app, "dark") == "dark" and is_dark(app.palette())
    # back to the system: the platform's own style and palette, not our dark one (this desktop is light)
    if not application.system_is_dark(app):
        assert application.apply_theme(app, "system") == "light" and not is_dark(app.palette())
