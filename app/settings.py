"""QSettings in INI format (tests redirect it with ``QSettings.setPath``): window layout, recent projects, and the
user's preferences (rendering device and defaults, theme, export folder, notifications)."""
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
RENDER_DEFAULTS = {"device": "auto", "precision": "auto", "memory_mode": "auto", "farm": ""}


def render_setting(key: str) -> str:
    """``device`` (where the worker runs), ``precision`` and ``memory_mode`` (defaults of new jobs), ``farm`` (a Ray
    render farm's address, docs/farm.md; "" = render on this machine)."""
    value = settings().value(f"render/{key}", RENDER_DEFAULTS[key])
    return str(value or RENDER_DEFAULTS[key]).strip()


def set_render_setting(key: str, value: str) -> None:
    if key not in RENDER_DEFAULTS:
        raise KeyError(key)
    s = settings()
    s.setValue(f"render/{key}", str(value))
    s.sync()


# -- appearance -----------------------------------------------------------------------------------------------------
THEMES = ("system", "light", "dark")


def theme() -> str:
    """``system`` (follow the desktop's light or dark scheme), ``light`` or ``dark``."""
    value = str(settings().value("appearance/theme", "system") or "system")
    return value if value in THEMES else "system"


def set_theme(value: str) -> None:
    if value not in THEMES:
        raise ValueError(f"theme {value!r} is not one of {', '.join(THEMES)}")
    s = settings()
    s.setValue("appearance/theme", value)
    s.sync()


# -- exports and notifications --------------------------------------------------------------------------------------
def export_folder() -> Path:
    """Where Export proposes to save: the folder chosen in Settings, else the folder of the last export, else
    ~/Videos, else the home folder (the first of them that still exists)."""
    s = settings()
    for key in ("output/export_folder", "last_export_folder"):
        chosen = str(s.value(key, "") or "")
        if chosen and Path(chosen).is_dir():
            return Path(chosen)
    videos = Path.home() / "Videos"
    return videos if videos.is_dir() else Path.home()


def export_folder_setting() -> str:
    """The folder as chosen ("" when none was chosen)."""
    return str(settings().value("output/export_folder", "") or "")


def set_export_folder(path: Path | str) -> None:
    s = settings()
    s.setValue("output/export_folder", str(Path(path).expanduser().absolute()) if str(path).strip() else "")
    s.sync()


#: read by app.notifications (a batch finished, a job failed); on by default
NOTIFICATIONS_KEY = "notifications/enabled"


def notifications_enabled() -> bool:
    value = settings().value(NOTIFICATIONS_KEY, True)
    return value not in (False, "false", "0", 0)


def set_notifications_enabled(on: bool) -> None:
    s = settings()
    s.setValue(NOTIFICATIONS_KEY, bool(on))
    s.sync()
