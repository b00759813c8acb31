"""Disk-full detection shared by the store, the service and the CLI (DESIGN §2: resource faults never crash).

A full disk shows up as ``OSError(ENOSPC)`` (or ``EDQUOT``) from file writes and as SQLite's "database or disk is
full" (``SQLITE_FULL``) from the database, possibly wrapped by SQLAlchemy. :func:`is_disk_full` recognises all of
them; :func:`disk_full` builds the one message users see: "disk full (N MB free at PATH)".
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from sdk.errors import DiskFull

#: below this many free bytes a render does not start (a 16-frame output plus its staging is a few MB)
MIN_FREE_BYTES = 64 * 2**20
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Free bytes on the file system holding ``path`` (its nearest existing parent); -1 if unknown."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return int(shutil.disk_usage(p).free)
    except OSError:
        return -1


def is_disk_full(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what it wraps) says the disk or quota is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        text = str(exc).lower()
        if "database or disk is full" in text or "no space left on device" in text or "disk quota exceeded" in text:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False


def disk_full(path: str | os.PathLike[str]) -> DiskFull:
    """The error users see: ``disk full (N MB free at PATH)`` and how to fix it."""
    free = free_bytes(path)
    amount = f"{free / 2**20:.0f} MB" if free >= 0 else "unknown space"
    return DiskFull(f"disk full ({amount} free at {Path(path)})",
                    hint="Free some space on that disk (or move the project), then run the queue again; "
                         "nothing already saved was lost.")


def check_free(path: str | os.PathLike[str], need: int = MIN_FREE_BYTES) -> None:
    """Raise :class:`DiskFull` when fewer than ``need`` bytes are free at ``path``."""
    free = free_bytes(path)
    if 0 <= free < need:
        raise disk_full(path)
