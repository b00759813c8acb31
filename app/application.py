"""Start-up: parse arguments, create the QApplication, show the window first, then load plugins
and open the project in the background (the window appears before any sdk import)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from typing import Any

#: set by benchmarks/startup.py: print when the window is on screen, then quit
STARTUP_PROBE_ENV = "VGEN_STUDIO_STARTUP_PROBE"

log = logging.getLogger("vgen.app")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="vgen-studio", description="VGen Studio: the desktop app.")
    p.add_argument("project", nargs="?", help="a project folder (NAME.vgen) to open")
    return p.parse_known_args(argv)[0]


def _excepthook(window: Any) -> Any:
    """Errors in the event loop are shown, logged, and never end the app."""
    def hook(exc_type: Any, exc: BaseException, tb: Any) -> None:
        log.error("unhandled error", exc_info=(exc_type, exc, tb))
        traceback.print_exception(exc_type, exc, tb)
        if window is not None:
            try:
                window.show_error("Unexpected error", exc)
            except Exception:  # noqa: BLE001 - the last resort must not raise
                pass
    return hook


#: the platform's own style and palette, kept to go back to when "follow system" is chosen again
_platform_look: tuple[str, Any] | None = None


def dark_palette() -> Any:
    """A dark QPalette for the Fusion style (every role and the disabled group, so no widget needs a stylesheet)."""
    from PySide6.QtGui import QColor, QPalette

    R, G = QPalette.ColorRole, QPalette.ColorGroup
    pal = QPalette()
    roles = {R.Window: "#353535", R.WindowText: "#e8e8e8", R.Base: "#252525", R.AlternateBase: "#2f2f2f",
             R.ToolTipBase: "#424242", R.ToolTipText: "#f0f0f0", R.PlaceholderText: "#8f8f8f", R.Text: "#e8e8e8",
             R.Button: "#3c3c3c", R.ButtonText: "#e8e8e8", R.BrightText: "#ff6e6e", R.Light: "#575757",
             R.Midlight: "#474747", R.Mid: "#2b2b2b", R.Dark: "#1f1f1f", R.Shadow: "#141414",
             R.Highlight: "#2f7ad0", R.HighlightedText: "#ffffff", R.Link: "#6cb4ff", R.LinkVisited: "#b39ddb"}
    for role, color in roles.items():
        pal.setColor(role, QColor(color))
    for role, color in {R.WindowText: "#7d7d7d", R.Text: "#7d7d7d", R.ButtonText: "#7d7d7d",
                        R.Highlight: "#4a4a4a", R.HighlightedText: "#a8a8a8", R.Base: "#2c2c2c",
                        R.PlaceholderText: "#666666"}.items():
        pal.setColor(G.Disabled, role, QColor(color))
    return pal


def system_is_dark(app: Any) -> bool:
    """The desktop asks for a dark scheme (Qt's own reading of it)."""
    from PySide6.QtCore import Qt

    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: Any, theme: str) -> str:
    """Apply ``system`` / ``light`` / ``dark`` to the whole application with Qt's own styling: the Fusion style and
    a palette (never a stylesheet per widget). Returns the scheme applied: ``"light"`` or ``"dark"``.

    ``system`` keeps the platform's style and palette, switching to the dark palette only when the desktop asks
    for dark and the platform's palette is not dark already (plain X11 has no dark platform theme)."""
    global _platform_look
    from PySide6.QtWidgets import QStyleFactory

    first = _platform_look is None
    if first:
        _platform_look = (app.style().name(), app.palette())
    dark = theme == "dark" or (theme == "system" and system_is_dark(app))
    if theme == "system" and (not dark or _platform_look[1].window().color().lightness() < 128):
        if first:  # the platform's look is in place already: start-up pays nothing for it
            return "dark" if dark else "light"
        app.setStyle(QStyleFactory.create(_platform_look[0]) or QStyleFactory.create("Fusion"))
        app.setPalette(_platform_look[1])
        return "dark" if dark else "light"
    fusion = QStyleFactory.create("Fusion")
    app.setStyle(fusion)
    app.setPalette(dark_palette() if dark else fusion.standardPalette())
    return "dark" if dark else "light"


def follow_system_scheme(app: Any) -> None:
    """While the theme setting is ``system``, a change of the desktop's scheme applies at once."""
    from app import settings as st

    def changed(*_: Any) -> None:
        if st.theme() == "system":
            apply_theme(app, "system")

    app.styleHints().colorSchemeChanged.connect(changed)


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=os.environ.get("VGEN_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app import settings as st

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(st.ORGANIZATION)
    app.setApplicationName(st.APPLICATION)
    apply_theme(app, st.theme())  # before the first window: nothing is painted twice
    follow_system_scheme(app)
    from app.main_window import MainWindow

    window = MainWindow()
    sys.excepthook = _excepthook(window)
    window.show()
    if os.environ.get(STARTUP_PROBE_ENV):
        def shown() -> None:
            print(f"VGEN_STUDIO_SHOWN {time.time():.6f}", flush=True)
            app.quit()

        QTimer.singleShot(0, shown)  # after the first paint of the shown window

    def after_show() -> None:
        window.load_plugins()
        if args.project:
            window.open_project(args.project)

    if not os.environ.get(STARTUP_PROBE_ENV):
        QTimer.singleShot(0, after_show)
    code = app.exec()
    return int(code)
