"""QSettings in INI format (tests redirect it with ``QSettings.setPath``): window layout and recent projects."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "VGen Studio"
APPLICATION = "VGen Studio"
MAX_RECENT = 10


def settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def recent_projects() -> list[str]:
    value = settings().value("recent_projects", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or []) if v]


def add_recent_project(path: Path | str) -> list[str]:
    path = str(Path(path).absolute())
    items = [path] + [p for p in recent_projects() if p != path]
    s = settings()
    s.setValue("recent_projects", items[:MAX_RECENT])
    s.sync()
    return items[:MAX_RECENT]


def remove_recent_project(path: Path | str) -> None:
    path = str(Path(path).absolute())
    s = settings()
    s.setValue("recent_projects", [p for p in recent_projects() if p != path])
    s.sync()


# -- rendering (device, precision, memory mode) ------------------------------------------------------------------
RENDER_DEFAULTS = {"device": "auto", "precision": "auto", "memory_mode": "auto"}


def render_setting(key: str) -> str:
    """``device`` (where the worker runs), ``precision`` and ``memory_mode`` (defaults of new jobs)."""
    value = settings().value(f"render/{key}", RENDER_DEFAULTS[key])
    return str(value or RENDER_DEFAULTS[key])


def set_render_setting(key: str, value: str) -> None:
    if key not in RENDER_DEFAULTS:
        raise KeyError(key)
    s = settings()
    s.setValue(f"render/{key}", str(value))
    s.sync()
