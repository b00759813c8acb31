"""VGen Studio's GUI (PySide6) over the sdk. Never imports torch: the worker process does.

``run(argv)`` starts the application; importing this package imports nothing heavy.
"""
from __future__ import annotations

__all__ = ["run"]


def run(argv: list[str] | None = None) -> int:
    """Start the GUI: ``vgen-studio [PROJECT]``. Returns the exit code."""
    from app.application import run as _run

    return _run(list(argv or []))
