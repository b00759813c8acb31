"""Text stays readable in both themes: every tone reads at ≥ 4.5:1 on the window and on the list background, and
an error label follows a theme switch."""
from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QStyleFactory

from app import look
from app.application import apply_theme, dark_palette


def _lum(c: QColor) -> float:
    def ch(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    return 0.2126 * ch(c.redF()) + 0.7152 * ch(c.greenF()) + 0.0722 * ch(c.blueF())


def contrast(a: QColor, b: QColor) -> float:
    la, lb = sorted((_lum(a), _lum(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_tone_reads_on_the_window_and_the_lists(qapp: QApplication, theme: str) -> None:
    pal = dark_palette() if theme == "dark" else QStyleFactory.create("Fusion").standardPalette()
    for name in look.TONES:
        colour = QColor(look.tone(name, pal))
        for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
            ratio = contrast(colour, pal.color(role))
            assert ratio >= 4.5, f"{name} {colour.name()} on {theme} {role.name}: {ratio:.2f}:1"
    muted = pal.color(QPalette.ColorRole.PlaceholderText)
    if theme == "dark":  # the light palette's placeholder is the platform's business
        assert contrast(muted, pal.color(QPalette.ColorRole.Window)) >= 3.0


def test_an_error_label_follows_a_theme_switch(qapp: QApplication, qtbot) -> None:
    label = QLabel("Max steps must be at least 1")
    qtbot.addWidget(label)
    try:
        apply_theme(qapp, "light")
        look.error(label)
        light = label.palette().color(QPalette.ColorRole.WindowText).name()
        apply_theme(qapp, "dark")
        qapp.processEvents()
        dark = label.palette().color(QPalette.ColorRole.WindowText).name()
        assert (light, dark) == look.TONES["error"]
        hint = look.muted(QLabel("about 2 min"))
        assert hint.foregroundRole() == QPalette.ColorRole.PlaceholderText
    finally:
        apply_theme(qapp, "light")
