"""Text colours that read well in the light and the dark theme alike.

The themes are Qt palettes (:func:`app.application.apply_theme`), so a widget that takes its colours from a palette
role follows a theme change by itself. Secondary text uses the ``PlaceholderText`` role (:func:`muted`). Qt has no
role for errors or states, so :func:`tone` picks each from a pair (light theme, dark theme) by the lightness of the
current palette's window colour, and a widget marked with :func:`error` is re-toned when the application's palette
changes. Never write a fixed colour into a stylesheet: ``#616161`` on the dark window (#353535) reads at 1.9:1.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

#: name → (on a light window, on a dark window); each at least 4.5:1 against its window colour
TONES: dict[str, tuple[str, str]] = {
    "error": ("#c62828", "#ff8a80"),
    "running": ("#1a5fb4", "#8ab4f8"),
    "done": ("#276b2b", "#81c995"),
    "failed": ("#c62828", "#ff8a80"),
    "cancelled": ("#616161", "#a8a8a8"),
    "waiting": ("#8a4f00", "#fdc06b"),
    "token": ("#1565c0", "#8ab4f8"),
}


def is_dark(palette: QPalette | None = None) -> bool:
    """The palette in force (default: the application's) is a dark one."""
    pal = palette or QApplication.palette()
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


def tone(name: str, palette: QPalette | None = None) -> str:
    """The colour (``#rrggbb``) of ``name`` (a key of :data:`TONES`) for the current theme."""
    light, dark = TONES[name]
    return dark if is_dark(palette) else light


_colors: dict[tuple[str, bool], QColor] = {}


def tone_color(name: str) -> QColor:
    """:func:`tone` as a QColor, made once per theme (models ask for it on every paint of a row)."""
    key = (name, is_dark())
    color = _colors.get(key)
    if color is None:
        color = _colors[key] = QColor(tone(name, QApplication.palette()))
    return color


def muted(widget: QWidget) -> QWidget:
    """Secondary text (hints, estimates, paths): the palette's placeholder colour, which follows the theme."""
    widget.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return widget


class _Retone(QObject):
    """Re-applies a widget's tone when the application's palette or style changes (a theme switch)."""

    def __init__(self, widget: QWidget, name: str) -> None:
        super().__init__(widget)
        self.name = name
        widget.installEventFilter(self)

    def apply(self, widget: QWidget) -> None:
        pal = widget.palette()
        pal.setColor(QPalette.ColorRole.WindowText, QColor(tone(self.name, QApplication.palette())))
        pal.setColor(QPalette.ColorRole.Text, QColor(tone(self.name, QApplication.palette())))
        widget.setPalette(pal)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.StyleChange):
            self.apply(obj)  # type: ignore[arg-type]
        return False


def toned(widget: QWidget, name: str) -> QWidget:
    """``widget``'s text in the tone ``name``, now and after every theme change."""
    filt = getattr(widget, "_vgen_tone", None)
    if filt is None:
        filt = _Retone(widget, name)
        widget._vgen_tone = filt  # type: ignore[attr-defined]
    filt.name = name
    filt.apply(widget)
    return widget


def error(widget: QWidget) -> QWidget:
    """Error text (a label under a form, a problem line)."""
    return toned(widget, "error")
