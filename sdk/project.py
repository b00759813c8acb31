"""A VGen Studio project: a folder with ``project.db`` (the single source of truth) and its files.

```
Name.vgen/  project.db  assets/ab/ab12….png  outputs/<job-id>/  adapters/<adapter-id>/  .staging/  .trash/  .lock
```

Many processes may open the same project at once (SQLite WAL, short transactions, a 10 s busy
timeout); only the holder of the render lock runs the queue. Every method returns detached
records from :mod:`sdk.records`.

Opening checks, in order: the folder's own entries are no symlinks (:mod:`sdk.store.paths`); whether
the folder and database can be written (if not, the project opens read-only); the schema revision;
``PRAGMA quick_check`` — or ``integrity_check`` after an unclean shutdown — and a database that fails
opens read-only ("damaged") with the recovery steps in every refused write.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

import sdk
from sdk.diskspace import disk_full, is_disk_full
from sdk.errors import DiskFull, InvalidRequest, ProjectError, ProjectReadOnly
from sdk.store import db
from sdk.store import models as m
from sdk.store.access import disk_is_full, read_only_reason
from sdk.store.catalog import CatalogMixin
from sdk.store.conditions import ConditionsMixin
from sdk.store.lock import RenderLock, acquire, holder_key, stale_holder
from sdk.store.paths import check_structure, real_dir
from sdk.store.queue import QueueMixin
from sdk.store.trash import TrashMixin

DB_NAME = "project.db"
SUBDIRS = ("assets", "outputs", "adapters", ".staging")
TEMPLATE_FILE = "template.json"
#: project_meta key: the unclean shutdown (the dead lock holder) after which integrity_check last ran
CHECKED_AFTER_KEY = "integrity_checked_after"

__all__ = ["Project", "RenderLock", "list_templates", "templates_dir"]


def templates_dir() -> Path:
    """The folder of built-in project templates (``<repo>/project_templates``)."""
    return Path(sdk.__file__).resolve().parent.parent / "project_templates"


def list_templates() -> list[dict[str, Any]]:
    """Built-in templates: ``[{"name", "title", "description", "path"}]``, sorted by name.

    A folder without a readable ``template.json`` is skipped.
    """
    root = templates_dir()
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            manifest = json.loads((folder / TEMPLATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found.append({"name": folder.name, "title": manifest.get("title", folder.name),
                      "description": manifest.get("description", ""), "path": folder})
    return found


def _resolve_template(template: str | os.PathLike[str]) -> Path:
    candidate = Path(template)
    if (candidate / TEMPLATE_FILE).is_file():
        return candidate
    builtin = templates_dir() / str(template)
    if (builtin / TEMPLATE_FILE).is_file():
        return builtin
    names = ", ".join(t["name"] for t in list_templates()) or "none installed"
    raise InvalidRequest(f"Unknown project template {str(template)!r}.",
                         hint=f"Use a built-in template ({names}) or a folder holding {TEMPLATE_FILE}.",
                         field="template")


class Project(CatalogMixin, QueueMixin, ConditionsMixin, TrashMixin):
    """An open project. Use :meth:`create` or :meth:`open`; close it (or use ``with``) when done.

    ``read_only`` is True when the project can be read (list, info, export) but not changed: its folder
    or database cannot be written (``read_only_reason`` says which), or its database is damaged
    (``damaged`` holds what the check found). Every write then raises ProjectReadOnly.
    """

    path: Path
    name: str

    def __init__(self, path: Path, *, read_only_reason: str | None = None, full_disk: bool = False) -> None:
        """Internal: use :meth:`create` or :meth:`open` (they check and migrate the database)."""
        self.path = path
        self.real_path = Path(os.path.realpath(path))
        self.db_path = path / DB_NAME
        self.read_only_reason = read_only_reason
        self.full_disk = full_disk
        self.damaged = None
        self._make_engines()
        self.name = path.stem

    def _load_name(self) -> None:
        try:
            name = self._meta("name", self.path.stem)
        except ProjectError:
            name = None
        self.name = name if isinstance(name, str) else self.path.stem

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def create(cls, path: str | os.PathLike[str], template: str | os.PathLike[str] | None = None,
               name: str | None = None) -> Project:
        """Create a project folder at ``path`` (which must not exist or be empty) and open it.

        Args: template: a built-in template name (see :func:`list_templates`) or a template folder;
        name: defaults to the folder name without its ``.vgen`` suffix.
        Raises InvalidRequest for a non-empty folder, an unknown template or a bad template file;
        a failed create leaves no folder behind.
        """
        root = Path(path).expanduser().absolute()
        template_dir = _resolve_template(template) if template is not None else None
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise InvalidRequest(f"Cannot create a project at {root}: it exists and is not an empty folder.",
                                 hint="Choose a new folder name, or open the existing project.", field="path")
        existed = root.exists()
        project: Project | None = None
        try:
            try:
                root.mkdir(parents=True, exist_ok=True)
                for sub in SUBDIRS:
                    real_dir(root, sub)
                db.upgrade(root / DB_NAME)
            except (OSError, DBAPIError) as exc:
                if is_disk_full(exc):
                    raise disk_full(root.parent if not root.exists() else root) from exc
                if isinstance(exc, OSError):
                    raise ProjectError(f"Cannot create a project at {root}: {exc.strerror or exc}.",
                                       hint="Choose a folder you can write to.") from exc
                raise
            project = cls(root)
            project._init_meta(name or root.name.removesuffix(".vgen"))
            if template_dir is not None:
                project._apply_template(template_dir)
        except BaseException:
            if project is not None:
                project.close()
            if existed:  # leave the empty folder the caller gave us, empty
                for child in root.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            else:
                shutil.rmtree(root, ignore_errors=True)
            raise
        return project

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Project:
        """Open the project at ``path`` (its folder or its ``project.db``).

        An older schema is upgraded after ``project.db`` is copied to ``project.db.bak-<old revision>``.
        A project that cannot be written, or whose database fails its check, opens read-only
        (:attr:`read_only`). Raises UnsafeProject if the folder holds a symlink in place of its own
        files or folders (naming it); ProjectError if the database is missing or unreadable, or was made by
        a newer VGen Studio; ProjectReadOnly if an older schema needs an upgrade the project cannot take.
        """
        given = Path(path).expanduser().absolute()
        root = given.parent if given.name == DB_NAME or given.is_file() else given
        db_path = root / DB_NAME
        if given.is_file() and given.name != DB_NAME:
            raise ProjectError(f"{given} is not a VGen Studio project: a project's database is named {DB_NAME}.",
                               hint="Give the project folder (e.g. Fitness.vgen).")
        if not db_path.is_file() or db_path.is_symlink():
            check_structure(root)  # a project.db that is a symlink is named as such
            raise ProjectError(f"No VGen Studio project at {given}: {db_path} does not exist.",
                               hint="Check the path, or create a project with `vgen project new PATH`.")
        check_structure(root)
        reason = read_only_reason(root, db_path)
        full = False
        try:
            db.read_revision(db_path, read_only=reason is not None)  # refuses a file SQLite cannot read at all
        except ProjectError as exc:
            if reason is not None or not disk_is_full(root, exc.__cause__):
                raise
            # a full disk leaves no room for the -shm file a writer needs: open for reading; writes say
            # "disk full" until there is room again
            reason, full = "its disk is full", True
            db.read_revision(db_path, read_only=True)
        project = cls(root, read_only_reason=reason, full_disk=full)
        try:
            project._check_health()
            db.migrate_on_open(db_path, writable=not project.read_only)
            if not project.read_only:
                for sub in SUBDIRS:
                    real_dir(root, sub)
            project._load_name()
        except OSError as exc:
            project.close()
            if is_disk_full(exc):
                raise disk_full(root) from exc
            raise
        except BaseException:
            project.close()
            raise
        return project

    @classmethod
    def open_or_create(cls, path: str | os.PathLike[str], template: str | os.PathLike[str] | None = None) -> Project:
        """Open the project at ``path`` if there is one, else create it (from ``template``): what a script that is
        run more than once wants. ``template`` is applied only when the project is created.

        Raises what :meth:`open` and :meth:`create` raise (InvalidRequest when ``path`` is a folder that holds other
        files but no project).
        """
        root = Path(path).expanduser().absolute()
        if (root / DB_NAME).exists() or root.name == DB_NAME:
            return cls.open(root)
        return cls.create(root, template=template)

    def _check_health(self) -> None:
        """``quick_check`` on every open; ``integrity_check`` (once) after an unclean shutdown, i.e. when
        ``.lock`` still names a holder that is dead. A database that fails stays open read-only."""
        stale = stale_holder(self.path / ".lock")
        key = holder_key(stale) if stale else None
        full = False
        if key is not None:
            try:
                full = self._meta(CHECKED_AFTER_KEY) != key
            except ProjectError:  # the meta table itself is unreadable: the full check tells what is wrong
                full = True
        result = self._run_check(full)
        if result != "ok":
            self._mark_damaged(result)
        elif full and not self.read_only:
            self._record_checked(key)

    def _run_check(self, full: bool) -> str:
        """``"ok"``, or what SQLite found wrong. An error that says nothing about the file's contents
        (permissions, a vanished file) raises ProjectError instead: only real damage marks a project damaged."""
        try:
            with self._engine.connect() as conn:
                rows = conn.exec_driver_sql(f"PRAGMA {'integrity_check' if full else 'quick_check'}(20)").fetchall()
        except DBAPIError as exc:
            text = str(exc.orig)
            if any(w in text for w in ("malformed", "not a database", "corrupt")):
                return text
            raise ProjectError(f"Cannot read the project database {self.db_path}: {text}.",
                               hint="Check that the file is there and that you may read it.") from exc
        return "\n".join(str(r[0]) for r in rows) or "ok"

    def _record_checked(self, key: str | None) -> None:
        try:  # best effort: a full disk must not stop the project from opening
            with self._writing() as s:
                self._set_meta(s, CHECKED_AFTER_KEY, key)
        except (DiskFull, ProjectReadOnly):
            pass

    def close(self) -> None:
        """Release database connections (the project can no longer be used)."""
        self._dispose_engines()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({self.name!r}, {str(self.path)!r})"

    # ------------------------------------------------------------------ meta
    def _meta(self, key: str, default: Any = None) -> Any:
        with self._reading() as s:
            row = s.get(m.ProjectMeta, key)
            return default if row is None else row.value

    def _set_meta(self, s: Session, key: str, value: Any) -> None:
        s.merge(m.ProjectMeta(key=key, value=value))

    def _init_meta(self, name: str) -> None:
        with self._writing() as s:
            self._set_meta(s, "name", name)
            self._set_meta(s, "created_at", time.time())
            self._set_meta(s, "app_version", sdk.__version__)
        self.name = name

    def meta(self, key: str, default: Any = None) -> Any:
        """A project fact: ``name``, ``created_at``, ``app_version``, ``template``, ``suggested_jobs``,
        ``weights_policy``."""
        return self._meta(key, default)

    def info(self) -> dict[str, Any]:
        """Summary: name, path, schema revision, app version, counts (jobs by status; rows with a status
        that is not one of them are counted as ``INVALID``), ``read_only`` and its reason, ``damaged``."""
        with self._reading() as s:
            def count(model: Any) -> int:
                return int(s.scalar(select(func.count()).select_from(model)) or 0)

            by_status = {st: 0 for st in m.JOB_STATUSES}
            for status, n in s.execute(select(m.Job.status, func.count()).group_by(m.Job.status)).all():
                key = status if status in by_status else "INVALID"
                by_status[key] = by_status.get(key, 0) + int(n)
            return {
                "name": self.name,
                "path": str(self.path),
                "read_only": self.read_only,
                "read_only_reason": self.read_only_reason,
                "damaged": self.damaged,
                "schema_revision": s.scalar(text("SELECT version_num FROM alembic_version")),
                "created_at": s.scalar(select(m.ProjectMeta.value).where(m.ProjectMeta.key == "created_at")),
                "subjects": count(m.Subject), "motions": count(m.Motion), "prompts": count(m.Prompt),
                "assets": count(m.Asset), "outputs": count(m.Output), "adapters": count(m.Adapter),
                "jobs": by_status,
            }

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` when the database is sound, else what is wrong.

        A database that fails is marked damaged: the project stays open read-only.
        """
        result = self._run_check(full=True)
        if result != "ok":
            self._mark_damaged(result)
        return result

    # ------------------------------------------------------------------ render lock
    def acquire_render_lock(self, holder: str = "") -> RenderLock:
        """Become the one process that renders this project's queue.

        Raises ProjectLocked naming the live holder (pid, host, since when). A holder that died is
        taken over at once (the OS drops its lock); because it died without releasing the lock, the
        database gets an ``integrity_check`` first (unless one already ran for that holder), and a
        database that fails it is not rendered (ProjectReadOnly with the recovery steps). Raises
        ProjectReadOnly for a read-only project, UnsafeProject if ``.lock`` is a symlink.
        """
        self._check_writable()
        with self._writing_files():
            lock = acquire(self.path / ".lock", self.name, holder)
        if lock.previous:
            key = holder_key(lock.previous)
            try:
                checked = self._meta(CHECKED_AFTER_KEY) == key
            except ProjectError:
                checked = False
            result = "ok" if checked else self._run_check(full=True)
            if result != "ok":
                lock.release()
                self._mark_damaged(result)
                raise self._read_only_error()
            if not checked:
                self._record_checked(key)
        return lock

    # ------------------------------------------------------------------ re-queue
    def requeue(self, job_or_output: Any, *, registry: Any = None, **overrides: Any) -> Any:
        """Queue a job again (:mod:`sdk.requeue`): from its row when ``job_or_output`` is a job of this project (an
        id, a JobRecord, or an output of it), else from an output's recipe (an output folder, ``meta.json`` or
        MP4). Without ``overrides`` the new job has exactly the original params, prompt, seed, inputs, weights and
        run options; overrides are parameter values (a list is a grid axis), ``prompt``, ``seeds``, ``options``,
        ``inputs`` and ``weights``, validated like any request. ``registry``: the plugins (default: those
        installed). Returns the BatchRecord. Raises InvalidRequest, WeightsMissing."""
        from sdk.requeue import requeue

        return requeue(self, job_or_output, registry=registry, **overrides)

    # ------------------------------------------------------------------ templates
    def _apply_template(self, folder: Path) -> None:
        try:
            manifest = json.loads((folder / TEMPLATE_FILE).read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("the top level must be an object")
        except (OSError, ValueError) as exc:
            raise InvalidRequest(f"Cannot read template {folder / TEMPLATE_FILE}: {exc}.",
                                 hint="Fix the template's JSON.", field="template") from exc
        try:
            for p in manifest.get("prompts", []):
                self.add_prompt(p["text"], p.get("negative", ""))
            for subj in manifest.get("subjects", []):
                masks = [folder / x if x else None for x in subj["masks"]] if subj.get("masks") else None
                self.add_subject(subj["name"], [folder / x for x in subj.get("images", [])],
                                 token=subj.get("token"), masks=masks)
            for mo in manifest.get("motions", []):
                self.add_motion(mo["name"], [folder / x for x in mo.get("videos", [])])
        except (KeyError, TypeError) as exc:
            raise InvalidRequest(f"Template {folder / TEMPLATE_FILE} is malformed (missing or bad {exc}).",
                                 hint="Each prompt needs 'text'; each subject and motion a 'name'.",
                                 field="template") from exc
        with self._writing() as s:
            self._set_meta(s, "template", {"name": folder.name, "title": manifest.get("title", folder.name),
                                           "description": manifest.get("description", "")})
            self._set_meta(s, "suggested_jobs", list(manifest.get("jobs", [])))
            if isinstance(manifest.get("weights_policy"), dict):  # e.g. commercial-use weights only (queueing)
                self._set_meta(s, "weights_policy", dict(manifest["weights_policy"]))
        if manifest.get("auto_metrics"):
            from sdk.conditions import choose_installed_metrics

            choose_installed_metrics(self, manifest["auto_metrics"])
