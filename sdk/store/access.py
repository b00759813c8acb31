"""How the project's mixins reach the database and the folder: read and write sessions that turn
storage faults into the errors users see.

- A write on a read-only project (folder or ``project.db`` not writable, or a damaged database)
  is refused before anything is touched, with :class:`~sdk.errors.ProjectReadOnly`.
- "database or disk is full" and ``ENOSPC`` become :class:`~sdk.errors.DiskFull` ("disk full (N MB
  free at PATH)"); the transaction is rolled back, and callers undo the files they placed.
- "database disk image is malformed" marks the project damaged: it stays open read-only and every
  later write is refused with the recovery hint (back up first, then ``.recover`` into a new file).
"""
from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from sdk.diskspace import disk_full, free_bytes, is_disk_full
from sdk.errors import ProjectError, ProjectReadOnly, VGenError
from sdk.store import db

#: below this many free bytes a project whose database cannot even be opened for writing opens read-only
FULL_DISK_BYTES = 2**20
READ_ONLY_HINT = ("Copy the project folder somewhere writable (e.g. `cp -r` it into your home folder) and open the "
                  "copy, or make the folder and project.db writable again. The project itself is fine.")


class StoreAccess:
    """Base of :class:`sdk.Project`: the engines, the read-only state and the session helpers."""

    path: Path
    real_path: Path            # the project folder with symlinks resolved (containment checks)
    db_path: Path
    read_only_reason: str | None = None
    damaged: str | None = None  # what quick_check/integrity_check (or SQLite) found wrong, if anything
    full_disk: bool = False     # opened read-only because its disk was full; writable again once there is room
    _engine: Engine            # reads (deferred BEGIN)
    _wengine: Engine           # writes (BEGIN IMMEDIATE); the read engine when read-only

    @property
    def read_only(self) -> bool:
        """True when the project can be read (list, info, export) but not changed."""
        return self.read_only_reason is not None or self.damaged is not None

    def _make_engines(self) -> None:
        if self.read_only:
            immutable = False
            try:
                con, immutable = db.connect_ro(self.db_path)
                con.close()
            except sqlite3.Error:  # the first query reports it (damaged or unreadable)
                pass
            self._engine = db.make_engine(self.db_path, read_only=True, immutable=immutable)
            self._wengine = self._engine
        else:
            self._engine = db.make_engine(self.db_path)
            self._wengine = db.make_engine(self.db_path, immediate=True)

    def _dispose_engines(self) -> None:
        self._engine.dispose()
        if self._wengine is not self._engine:
            self._wengine.dispose()

    def _mark_damaged(self, problem: str) -> None:
        """Keep the project open, read-only: nothing may write to a database SQLite found damaged."""
        if self.damaged is None:
            self.damaged = problem.strip() or "the database is damaged"
            self._dispose_engines()
            self._make_engines()

    def _read_only_error(self) -> VGenError:
        if self.full_disk and self.damaged is None:
            return disk_full(self.path)
        if self.damaged is not None:
            first = self.damaged.splitlines()[0][:200]
            return ProjectReadOnly(f"The project database {self.db_path} is damaged ({first}); the project is open "
                                   "read-only so that nothing makes it worse.", hint=db.RECOVER_HINT)
        return ProjectReadOnly(f"The project {self.path} is read-only ({self.read_only_reason}); it can be listed, "
                               "inspected and exported, but not changed.", hint=READ_ONLY_HINT)

    def _check_writable(self) -> None:
        """Raise ProjectReadOnly (before anything is touched) when the project cannot be changed, DiskFull
        when it was opened on a full disk that still has no room."""
        if self.full_disk and self.damaged is None and free_bytes(self.path) > FULL_DISK_BYTES:
            self.full_disk, self.read_only_reason = False, None  # room again: write as usual
            self._dispose_engines()
            self._make_engines()
        if self.read_only:
            raise self._read_only_error()

    def _translate(self, exc: BaseException) -> VGenError | None:
        """The user-facing error for a storage fault, or None for anything else."""
        if is_disk_full(exc):
            return disk_full(self.path)
        text = str(getattr(exc, "orig", None) or exc).lower()
        if isinstance(exc, OSError) and exc.errno == errno.EACCES:  # one file or folder in the project
            return ProjectReadOnly(f"Cannot write {exc.filename} in the project {self.path}: permission denied.",
                                   hint=READ_ONLY_HINT)
        if (isinstance(exc, OSError) and exc.errno == errno.EROFS) or "readonly database" in text:
            if self.read_only_reason is None:
                self.read_only_reason = "its file system or database refused a write"
            return self._read_only_error()
        if "malformed" in text or "not a database" in text:
            self._mark_damaged(str(getattr(exc, "orig", None) or exc))
            return ProjectError(f"The project database {self.db_path} is damaged ({text[:200]}).",
                                hint=db.RECOVER_HINT)
        return None

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        """A read transaction (deferred BEGIN); a damaged database raises ProjectError with the recovery hint."""
        try:
            with Session(self._engine) as s, s.begin():
                yield s
        except DBAPIError as exc:
            err = self._translate(exc)
            if err is None:
                raise
            raise err from exc

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A write transaction (BEGIN IMMEDIATE), refused up front on a read-only project; a full disk
        raises DiskFull after the rollback."""
        self._check_writable()
        try:
            with Session(self._wengine) as s, s.begin():
                yield s
        except (DBAPIError, OSError) as exc:
            err = self._translate(exc)
            if err is None:
                raise
            raise err from exc

    @contextmanager
    def _writing_files(self) -> Iterator[None]:
        """File work in the project folder: refused on a read-only project; ENOSPC/EROFS translated."""
        self._check_writable()
        try:
            yield
        except OSError as exc:
            err = self._translate(exc)
            if err is None:
                raise
            raise err from exc


def disk_is_full(root: Path, exc: BaseException | None) -> bool:
    """True when opening failed because the disk is full: SQLite then cannot create or grow the -shm file
    ("disk I/O error") or write at all ("database or disk is full")."""
    text = str(exc)
    return (0 <= free_bytes(root) < FULL_DISK_BYTES
            and (is_disk_full(exc) or "disk I/O error" in text or "unable to open" in text))


def read_only_reason(root: Path, db_path: Path) -> str | None:
    """Why the project cannot be written (None if it can): a read-only mount, or a folder or database file
    this user may not write. SQLite needs both: it writes -wal/-shm files next to the database."""
    try:
        if os.statvfs(root).f_flag & os.ST_RDONLY:
            return f"its file system is mounted read-only ({root})"
    except OSError:
        pass
    for path, what in ((root, "its folder"), (db_path, "project.db")):
        if not os.access(path, os.W_OK):
            return f"{what} {path} is not writable"
    for suffix in ("-wal", "-shm"):
        side = db_path.with_name(db_path.name + suffix)
        if side.exists() and not os.access(side, os.W_OK):
            return f"{side} is not writable"
    return None
