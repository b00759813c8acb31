"""Making a project folder or its database really read-only, and small tmpfs disks, for the store tests.

root ignores file permissions, so as root a folder is made read-only with a read-only mount (a tmpfs
remounted ``ro``, or a read-only bind mount of ``project.db``); as any other user ``chmod`` does it.
Tests that need a mount skip, naming the reason, where mounting is not permitted.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

IS_ROOT = os.geteuid() == 0


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)


class Mounts:
    """Mounts made by one test, undone (innermost first) when it ends."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def tmpfs(self, where: Path, size: str = "64m") -> Path:
        """A fresh tmpfs of ``size`` at ``where`` (root only; skips the test where mounting is refused)."""
        if not IS_ROOT:
            pytest.skip("a tmpfs needs root (mount is not permitted for this user)")
        where.mkdir(parents=True, exist_ok=True)
        try:
            _sh("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where))
        except (subprocess.CalledProcessError, FileNotFoundError, OSError) as exc:
            pytest.skip(f"cannot mount a tmpfs here: {getattr(exc, 'stderr', '') or exc}")
        self._undo.append(lambda: _sh("umount", "-l", str(where)))
        return where

    def make_read_only(self, path: Path) -> None:
        """Make ``path`` (a folder on a tmpfs from :meth:`tmpfs`, or a file) read-only for this process."""
        if not IS_ROOT:
            mode = path.stat().st_mode & 0o777
            path.chmod(0o555 if path.is_dir() else 0o444)
            self._undo.append(lambda: path.chmod(mode))
            return
        if path.is_dir():  # the tmpfs the folder lives on, remounted read-only
            mount = path
            while not os.path.ismount(mount):
                mount = mount.parent
            try:
                _sh("mount", "-o", "remount,ro", str(mount))
            except (subprocess.CalledProcessError, OSError) as exc:
                pytest.skip(f"cannot remount a tmpfs read-only here: {getattr(exc, 'stderr', '') or exc}")
            self._undo.append(lambda: _sh("mount", "-o", "remount,rw", str(mount)))
        else:  # one file: a read-only bind mount over itself
            try:
                _sh("mount", "--bind", str(path), str(path))
            except (subprocess.CalledProcessError, OSError) as exc:
                pytest.skip(f"cannot bind-mount a file here: {getattr(exc, 'stderr', '') or exc}")
            self._undo.append(lambda: _sh("umount", "-l", str(path)))
            try:
                _sh("mount", "-o", "remount,bind,ro", str(path))
            except (subprocess.CalledProcessError, OSError) as exc:
                pytest.skip(f"cannot make a bind mount read-only here: {getattr(exc, 'stderr', '') or exc}")

    def close(self) -> None:
        while self._undo:
            try:
                self._undo.pop()()
            except (subprocess.CalledProcessError, OSError):
                pass


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    m = Mounts()
    try:
        yield m
    finally:
        m.close()
