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
