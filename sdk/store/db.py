"""Engines and schema migrations for ``project.db``.

Every connection runs SQLite in WAL mode with a busy timeout and foreign keys on. SQLAlchemy
emits ``BEGIN`` itself (pysqlite's own transaction handling is switched off), so that a
*writer* engine can begin with ``BEGIN IMMEDIATE``: it takes the write lock before its first
read, so a read-modify-write such as "append at the end of the queue" or "claim the next job"
cannot interleave with another process, and waits (busy timeout) instead of failing.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

from sdk.errors import ProjectError

BUSY_TIMEOUT_S = 10.0
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(db_path: Path, *, immediate: bool = False, foreign_keys: bool = True) -> Engine:
    """Return an engine for ``db_path``; ``immediate=True`` makes every transaction ``BEGIN IMMEDIATE``."""
    engine = create_engine(
        f"sqlite:///{db_path}",
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module doc)
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a power cut loses at most the last commit
        cur.close()

    begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin_sql)

    return engine


def alembic_config(connection: Any = None) -> Any:
    """An Alembic ``Config`` built in code (no alembic.ini) pointing at ``sdk/store/migrations``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def known_revisions() -> tuple[set[str], str]:
    """Return (all revision ids this code knows, the head revision)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None
    return {rev.revision for rev in script.walk_revisions()}, head


def read_revision(db_path: Path) -> str | None:
    """Read ``alembic_version`` without writing anything.

    Raises ProjectError when the file is not an SQLite database or not a VGen Studio project.
    """
    try:
        # mode=rw (not ro): a read-only connection to a WAL database leaves -wal/-shm files behind;
        # this one only reads, and closing it removes them again.
        con = sqlite3.connect(db_path.resolve().as_uri() + "?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise ProjectError(f"Cannot open the project database {db_path}: {exc}.",
                           hint="Check the path and its permissions.") from exc
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "alembic_version" not in tables:
            raise ProjectError(
                f"{db_path} is not a VGen Studio project database (it has no schema version).",
                hint="Open the folder of a project made by VGen Studio, or create a new project.",
            )
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None
    except sqlite3.DatabaseError as exc:
        raise ProjectError(
            f"The project database {db_path} is damaged or not an SQLite file ({exc}).",
            hint="Restore project.db from a backup (project.db.bak-* files are kept next to it).",
        ) from exc
    finally:
        con.close()


def backup_database(db_path: Path, suffix: str) -> Path:
    """Copy ``db_path`` (consistently, through SQLite's backup API) to ``<db>.bak-<suffix>``."""
    target = db_path.with_name(f"{db_path.name}.bak-{suffix}")
    n = 1
    while target.exists():  # never overwrite an earlier backup
        n += 1
        target = db_path.with_name(f"{db_path.name}.bak-{suffix}.{n}")
    src = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_S)
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target


def upgrade(db_path: Path, revision: str = "head") -> None:
    """Run migrations up to ``revision`` inside one ``BEGIN IMMEDIATE`` transaction.

    Foreign keys are off on the migration connection because batch mode rebuilds tables
    (SQLite cannot ALTER most things); two processes opening an old project at once
    serialise on the write lock, and the second one finds nothing left to do.
    """
    from alembic import command

    engine = make_engine(db_path, immediate=True, foreign_keys=False)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()


def downgrade(db_path: Path, revision: str) -> None:
    """Run migrations down to ``revision`` (used by tests and for support only)."""
    from alembic import command

    engine = make_engine(db_path, immediate=True, foreign_keys=False)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()


def migrate_on_open(db_path: Path) -> str:
    """Bring an existing project database to the head revision; return that revision.

    An older schema is copied to ``project.db.bak-<old revision>`` first; a revision this code
    does not know (made by a newer VGen Studio) is refused and the file is left untouched.
    """
    known, head = known_revisions()
    current = read_revision(db_path)
    if current is None:
        raise ProjectError(f"{db_path} has an empty schema version table.",
                           hint="Restore project.db from a backup.")
    if current not in known:
        raise ProjectError(
            f"The project {db_path.parent} was made by a newer VGen Studio "
            f"(database schema {current}; this version knows up to {head}).",
            hint="Update VGen Studio to open it. The project was not changed.",
        )
    if current != head:
        backup_database(db_path, current)
        upgrade(db_path)
    return head
