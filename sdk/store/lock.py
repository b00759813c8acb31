"""The render lock: at most one RenderService runs a project's queue.

``fcntl.flock`` on ``<project>/.lock``. The kernel drops the lock when the holding process dies
(even by SIGKILL), so a dead holder never blocks the queue; the JSON written into the file only
names the holder in the error a second process sees.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from sdk.errors import ProjectLocked


class RenderLock:
    """A held render lock; release it with :meth:`release` or by leaving a ``with`` block."""

    def __init__(self, path: Path, fd: int, info: dict[str, object]) -> None:
        self.path = path
        self.info = info
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        """True until :meth:`release` was called."""
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # nobody holds it any more: leave no stale holder behind
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RenderLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:  # a forgotten lock must not outlive its object
        try:
            self.release()
        except OSError:
            pass


def read_holder(path: Path) -> dict[str, object]:
    """The holder info last written to the lock file ({} if none or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def acquire(path: Path, project_name: str, holder: str = "") -> RenderLock:
    """Take the render lock at ``path`` without waiting.

    Raises ProjectLocked naming the live holder (pid, host, since when).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        info = read_holder(path)
        since = info.get("started_at")
        since_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(since))) if since else "unknown time"
        who = f" ({info['holder']})" if info.get("holder") else ""
        raise ProjectLocked(
            f"Project {project_name} is already rendering{who} "
            f"(pid {info.get('pid', '?')} on {info.get('host', '?')} since {since_text}).",
            hint="Stop that process or wait; `vgen queue add` still works while it renders.",
        ) from None
    except BaseException:
        os.close(fd)
        raise
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time(), "holder": holder}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
    return RenderLock(path, fd, info)
