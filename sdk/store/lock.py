"""The render lock: at most one RenderService runs a project's queue.

``fcntl.flock`` on ``<project>/.lock``. The kernel drops the lock when the holding process dies
(even by SIGKILL), so a dead holder never blocks the queue; the JSON written into the file only
names the holder in the error a second process sees. :meth:`RenderLock.release` empties the file,
so a file that still names a holder nobody holds means that holder stopped without releasing it
(an unclean shutdown: see :func:`stale_holder`).

The file is opened with ``O_NOFOLLOW`` and must be a regular file with one link: a ``.lock`` that is
a symlink (or a hard link) to some other file is refused, never truncated.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
from pathlib import Path
from types import TracebackType

from sdk.errors import ProjectLocked, UnsafeProject
from sdk.safe_text import printable

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO planted as .lock never hangs us


def _unsafe(path: Path, what: str) -> UnsafeProject:
    return UnsafeProject(f"{path} is {what}, not the project's own lock file; it was not opened or changed.",
                         hint="Remove it (`rm` on it, which does not touch what a link points to) and run again.")


def _open_lock(path: Path, flags: int) -> int:
    """Open the lock file without following a symlink; refuse anything but a regular file with one link."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            raise _unsafe(path, f"a symbolic link (to {printable(target)})") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        raise _unsafe(path, "not a regular file" if not stat.S_ISREG(st.st_mode) else "a hard link to another file")
    os.set_blocking(fd, True)
    return fd


class RenderLock:
    """A held render lock; release it with :meth:`release` or by leaving a ``with`` block."""

    def __init__(self, path: Path, fd: int, info: dict[str, object]) -> None:
        self.path = path
        self.info = info
        self.previous: dict[str, object] = {}  # what a holder that died left in the file ({} if released)
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


def _read_fd(fd: int) -> dict[str, object]:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_holder(path: Path) -> dict[str, object]:
    """The holder info last written to the lock file ({} if none, unreadable, or not a plain file)."""
    try:
        fd = _open_lock(path, os.O_RDONLY)
    except (OSError, UnsafeProject):
        return {}
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


def holder_key(info: dict[str, object]) -> str:
    """A stable name for one holding of the lock (pid, host, start time)."""
    return f"{info.get('pid')}@{info.get('host')}:{info.get('started_at')}"


def stale_holder(path: Path) -> dict[str, object] | None:
    """The holder the lock file still names if that holder is dead (it stopped without releasing the lock:
    the service was killed or the machine went down), else None.

    Only a holder on this host can be judged from its pid; a pid reused since then hides the fact
    (the integrity check then runs when the render lock is next taken, see :func:`acquire`).
    """
    info = read_holder(path)
    pid = info.get("pid")
    if not info or info.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return info
    except OSError:  # alive, owned by someone else
        return None
    return None


def acquire(path: Path, project_name: str, holder: str = "") -> RenderLock:
    """Take the render lock at ``path`` without waiting.

    The returned lock's ``previous`` is the holder info a dead holder left behind ({} after a clean
    release). Raises ProjectLocked naming the live holder (pid, host, since when), UnsafeProject if
    ``.lock`` is a symlink or not a regular file.
    """
    fd = _open_lock(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        info = _read_fd(fd)
        os.close(fd)
        since = info.get("started_at")
        try:
            since_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(since)))  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError, OSError):
            since_text = "unknown time"
        who = f" ({printable(info['holder'])})" if info.get("holder") else ""
        raise ProjectLocked(
            f"Project {printable(project_name)} is already rendering{who} "
            f"(pid {printable(info.get('pid', '?'))} on {printable(info.get('host', '?'))} since {since_text}).",
            hint="Stop that process or wait; `vgen queue add` still works while it renders.",
        ) from None
    except BaseException:
        os.close(fd)
        raise
    previous = _read_fd(fd)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time(), "holder": holder}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
    except BaseException:
        os.close(fd)  # closing drops the flock too
        raise
    lock = RenderLock(path, fd, info)
    lock.previous = previous
    return lock
