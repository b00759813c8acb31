"""A VGen Studio project: a folder with ``project.db`` (the single source of truth) and its files.

```
Name.vgen/  project.db  assets/ab/ab12….png  outputs/<job-id>/  adapters/<adapter-id>/  .staging/  .lock
```

Many processes may open the same project at once (SQLite WAL, short transactions, a 10 s busy
timeout); only the holder of the render lock runs the queue. Every method returns detached
records from :mod:`sdk.records`.
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
from sqlalchemy.orm import Session

import sdk
from sdk.errors import InvalidRequest, ProjectError
from sdk.store import db
from sdk.store import models as m
from sdk.store.catalog import CatalogMixin
from sdk.store.lock import RenderLock, acquire
from sdk.store.queue import QueueMixin

DB_NAME = "project.db"
SUBDIRS = ("assets", "outputs", "adapters", ".staging")
TEMPLATE_FILE = "template.json"

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


class Project(CatalogMixin, QueueMixin):
    """An open project. Use :meth:`create` or :meth:`open`; close it (or use ``with``) when done."""

    path: Path
    name: str

    def __init__(self, path: Path) -> None:
        """Internal: use :meth:`create` or :meth:`open` (they check and migrate the database)."""
        self.path = path
        self.db_path = path / DB_NAME
        self._engine = db.make_engine(self.db_path)
        self._wengine = db.make_engine(self.db_path, immediate=True)
        self.name = str(self._meta("name", path.stem))

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
            root.mkdir(parents=True, exist_ok=True)
            for sub in SUBDIRS:
                (root / sub).mkdir(exist_ok=True)
            db.upgrade(root / DB_NAME)
            project = cls(root)
            project._init_meta(name or root.name.removesuffix(".vgen"))
            if template_dir is not None:
                project._apply_template(template_dir)
        except BaseException:
            if project is not None:
                project.close()
            if existed:  # leave the empty folder the caller gave us, empty
                for child in root.iterdir():
                    if child.is_dir():
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
        Raises ProjectError if the database is missing or damaged, or was made by a newer VGen Studio.
        """
        given = Path(path).expanduser().absolute()
        root = given.parent if given.name == DB_NAME or given.is_file() else given
        db_path = given if given.is_file() else root / DB_NAME
        if not db_path.is_file():
            raise ProjectError(f"No VGen Studio project at {given}: {db_path} does not exist.",
                               hint="Check the path, or create a project with `vgen project create`.")
        db.migrate_on_open(db_path)
        for sub in SUBDIRS:
            (root / sub).mkdir(exist_ok=True)
        return cls(root)

    def close(self) -> None:
        """Release database connections (the project can no longer be used)."""
        self._engine.dispose()
        self._wengine.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({self.name!r}, {str(self.path)!r})"

    # ------------------------------------------------------------------ meta
    def _meta(self, key: str, default: Any = None) -> Any:
        with Session(self._engine) as s, s.begin():
            row = s.get(m.ProjectMeta, key)
            return default if row is None else row.value

    def _set_meta(self, s: Session, key: str, value: Any) -> None:
        s.merge(m.ProjectMeta(key=key, value=value))

    def _init_meta(self, name: str) -> None:
        with Session(self._wengine) as s, s.begin():
            self._set_meta(s, "name", name)
            self._set_meta(s, "created_at", time.time())
            self._set_meta(s, "app_version", sdk.__version__)
        self.name = name

    def meta(self, key: str, default: Any = None) -> Any:
        """A project fact: ``name``, ``created_at``, ``app_version``, ``template``, ``suggested_jobs``."""
        return self._meta(key, default)

    def info(self) -> dict[str, Any]:
        """Summary: name, path, schema revision, app version and counts (jobs by status)."""
        with Session(self._engine) as s, s.begin():
            def count(model: Any) -> int:
                return int(s.scalar(select(func.count()).select_from(model)) or 0)

            by_status = {st: 0 for st in m.JOB_STATUSES}
            by_status.update(dict(s.execute(select(m.Job.status, func.count()).group_by(m.Job.status)).all()))
            return {
                "name": self.name,
                "path": str(self.path),
                "schema_revision": s.scalar(text("SELECT version_num FROM alembic_version")),
                "created_at": s.scalar(select(m.ProjectMeta.value).where(m.ProjectMeta.key == "created_at")),
                "subjects": count(m.Subject), "motions": count(m.Motion), "prompts": count(m.Prompt),
                "assets": count(m.Asset), "outputs": count(m.Output), "adapters": count(m.Adapter),
                "jobs": by_status,
            }

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` when the database is sound."""
        with self._engine.connect() as conn:
            rows = conn.exec_driver_sql("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)

    # ------------------------------------------------------------------ render lock
    def acquire_render_lock(self, holder: str = "") -> RenderLock:
        """Become the one process that renders this project's queue.

        Raises ProjectLocked naming the live holder (pid, host, since when). A holder that died is
        taken over at once (the OS drops its lock).
        """
        return acquire(self.path / ".lock", self.name, holder)

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
        with Session(self._wengine) as s, s.begin():
            self._set_meta(s, "template", {"name": folder.name, "title": manifest.get("title", folder.name),
                                           "description": manifest.get("description", "")})
            self._set_meta(s, "suggested_jobs", list(manifest.get("jobs", [])))
