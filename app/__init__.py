"""VGen Studio's GUI (PySide6) over the sdk. Never imports torch: the worker process does.

``run(argv)`` starts the application; importing this package imports nothing heavy.
"""
from __future__ import annotations

from app._pyside_fix import make_singletons_immortal

make_singletons_immortal()  # before any PySide6 call: see app/_pyside_fix.py

__all__ = ["run"]


def run(argv: list[str] | None = None) -> int:
    """Start the GUI: ``vgen-studio [PROJECT]``. Returns the exit code."""
    from app.application import run as _run

    return _run(list(argv or []))
