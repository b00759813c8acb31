"""Containment: no path built from project data leaves the project folder (DESIGN §3).

A project folder is untrusted input: people send each other projects, and a folder may hold a
symlink or a crafted ``project.db`` row. The rules, in the order they are applied:

- Ids read from the database are checked against their format *before* any path is built from
  them: job, batch and adapter ids are 12 lowercase hex characters (:func:`sdk.store.catalog.new_id`),
  asset hashes 64, asset extensions 1-8 lowercase letters or digits.
- The project's own entries (``project.db*``, ``.lock``, ``.staging``, ``.trash``, ``outputs``, ``adapters``,
  ``assets`` and ``assets/<xx>``) must be real files/folders, never symlinks, wherever they point:
  a project that holds one is refused at open (:func:`check_structure`) and again at each use.
- Paths stored in rows (``outputs.dir``, ``adapters.dir`` …) must be clean relative paths under
  their folder whose real path stays inside the project (:func:`stored_path_problem`).
- Deleting never follows a symlink: a link is removed itself, folders are removed through file
  descriptors opened with ``O_NOFOLLOW`` (:func:`remove_entry`, :func:`clear_folder`).
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from sdk.errors import UnsafeProject
from sdk.safe_text import printable

ID_RE = re.compile(r"[0-9a-f]{12}")
HASH_RE = re.compile(r"[0-9a-f]{64}")
EXT_RE = re.compile(r"[a-z0-9]{1,8}")

#: folders of a project; each must be a real folder (not a symlink)
FOLDERS = ("assets", "outputs", "adapters", ".staging", ".trash")
#: files of a project; each must be a regular file (not a symlink) when present
FILES = ("project.db", "project.db-wal", "project.db-shm", "project.db-journal", ".lock")

_FIX_LINK = ("Remove the link (`rm` on the link itself, not `rm -r` on the folder) and put a real folder or file "
             "there; if the project came from someone else, ask them for a copy without links.")
_DAMAGED_ROW = ("The row was damaged or crafted by hand; nothing was read or written through it. Remove it "
                "(failed jobs: `vgen queue clear`), or ask whoever sent the project for a clean copy.")


def is_id(value: object) -> bool:
    """True for a job/batch/adapter id: 12 lowercase hex characters."""
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def check_id(value: object, what: str = "job") -> str:
    """Return ``value`` if it is a well-formed ``what`` id; raise UnsafeProject naming it otherwise."""
    if not is_id(value):
        raise UnsafeProject(f"The {what} id {value!r} is not a {what} id (12 hexadecimal characters); "
                            "no path is built from it.", hint=_DAMAGED_ROW)
    return str(value)


def asset_name_problem(sha: object, ext: object) -> str | None:
    """Why ``assets/<sha[:2]>/<sha>.<ext>`` cannot be built from these values (None if it can)."""
    if not isinstance(sha, str) or HASH_RE.fullmatch(sha) is None:
        return f"asset hash {sha!r} is not 64 hexadecimal characters"
    if not isinstance(ext, str) or EXT_RE.fullmatch(ext) is None:
        return f"asset extension {ext!r} is not 1-8 lowercase letters or digits"
    return None


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _lexical_problem(rel: object, top: str) -> str | None:
    if not isinstance(rel, str) or not rel:
        return f"{rel!r} is not a path"
    if "\x00" in rel or "\\" in rel or rel.startswith("/"):
        return f"{rel!r} is not a relative path inside the project"
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return f"{rel!r} has empty, '.' or '..' parts"
    if parts[0] != top or len(parts) < 2:
        return f"{rel!r} is not inside {top}/"
    return None


def stored_path_problem(root: Path, real_root: Path, rel: object, top: str) -> str | None:
    """Why a relative path read from a row (e.g. ``outputs/<id>/video.mp4``) is unsafe; None when it is a
    clean path under ``top/`` whose real path (symlinks resolved) stays inside the project."""
    problem = _lexical_problem(rel, top)
    if problem is None:
        real = _real(root / str(rel))
        if not real.is_relative_to(real_root):
            problem = f"{rel!r} leads outside the project (to {real})"
    return problem


def contained(root: Path, real_root: Path, path: Path) -> bool:
    """True when ``path`` (symlinks resolved) is inside the project folder."""
    return _real(root / path).is_relative_to(real_root)


def _link_error(path: Path) -> UnsafeProject:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return UnsafeProject(f"{printable(path)} is a symbolic link (to {printable(target)}); a project folder may not hold links in "
                         "place of its own files and folders, so the project was not used.", hint=_FIX_LINK)


def check_structure(root: Path) -> None:
    """Refuse a project folder whose own entries are symlinks or of the wrong type (UnsafeProject)."""
    entries = [(root / name, True) for name in FOLDERS] + [(root / name, False) for name in FILES]
    assets = root / "assets"
    if assets.is_dir() and not assets.is_symlink():
        entries += [(child, True) for child in sorted(assets.iterdir()) if len(child.name) == 2]
    for path, folder in entries:
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise _link_error(path)
        if folder and not stat.S_ISDIR(st.st_mode) or not folder and not stat.S_ISREG(st.st_mode):
            kind = "folder" if folder else "regular file"
            raise UnsafeProject(f"{path} is not a {kind}; the project was not used.",
                                hint=f"Move it away; VGen Studio expects a {kind} there.")


def real_dir(root: Path, *parts: str, create: bool = True) -> Path:
    """``root/parts…`` after checking that no part is a symlink (each is created when missing and
    ``create``); UnsafeProject names the first part that is a link or not a folder."""
    path = root
    for part in parts:
        path = path / part
        try:
            st = path.lstat()
        except FileNotFoundError:
            if not create:
                return root.joinpath(*parts)
            try:
                path.mkdir()
            except FileExistsError:  # created meanwhile by another process: check it below
                pass
            st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            raise _link_error(path)
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeProject(f"{path} is not a folder.", hint="Move it away; VGen Studio expects a folder there.")
    return path


def _open_dir(path: Path) -> int:
    """A descriptor for the folder ``path`` that refuses a symlink in its last part (UnsafeProject)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and path.is_symlink():
            raise _link_error(path) from None
        raise


def _remove_at(dir_fd: int, name: str) -> None:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        # rmtree with dir_fd walks through descriptors and never descends into a symlink
        shutil.rmtree(name, dir_fd=dir_fd)
    else:  # a file or a symlink: remove the entry itself, never what a link points to
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass


def remove_entry(parent: Path, name: str) -> None:
    """Remove ``parent/name`` (file, folder or link) without following any symlink.

    ``parent`` must be a real folder (UnsafeProject if it is a link); a missing entry is no error.
    """
    if not name or "/" in name or name in (".", ".."):
        raise UnsafeProject(f"{name!r} is not a plain file name; nothing was removed.", hint=_DAMAGED_ROW)
    if not os.path.lexists(parent):
        return
    fd = _open_dir(parent)
    try:
        _remove_at(fd, name)
    finally:
        os.close(fd)


def clear_folder(folder: Path, keep: Callable[[str], bool] = lambda name: False) -> None:
    """Remove everything in ``folder`` except names ``keep`` accepts, never following symlinks."""
    if not os.path.lexists(folder):
        return
    fd = _open_dir(folder)
    try:
        for name in os.listdir(fd):
            if not keep(name):
                _remove_at(fd, name)
    finally:
        os.close(fd)

