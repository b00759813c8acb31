"""Engines and schema migrations for ``project.db``.

Every connection runs SQLite in WAL mode with a busy timeout and foreign keys on. SQLAlchemy
emits ``BEGIN`` itself (pysqlite's own transaction handling is switched off), so that a
*writer* engine can begin with ``BEGIN IMMEDIATE``: it takes the write lock before its first
read, so a read-modify-write such as "append at the end of the queue" or "claim the next job"
cannot interleave with another process, and waits (busy timeout) instead of failing.

A read-only project (its folder or ``project.db`` cannot be written, or the database is damaged)
gets engines whose connections are opened with ``mode=ro``; when SQLite cannot open a WAL
database that way (no ``-shm`` file and a folder it may not create one in) it falls back to
``immutable=1``. JSON columns never fail to load: text that is not JSON comes back as
:class:`Unreadable`, which the row validation in :mod:`sdk.store.convert` reports.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import QueuePool

from sdk.errors import ProjectError

BUSY_TIMEOUT_S = 10.0
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: how to get the data out of a damaged database without making it worse (shown with every such error)
RECOVER_HINT = ("Back up first: copy project.db and any project.db-wal / project.db-shm next to it somewhere safe. "
                "Then recover into a NEW file: `sqlite3 project.db \".recover\" | sqlite3 recovered.db`, open a copy of "
                "the project with recovered.db renamed to project.db, and keep the original until it works "
                "(project.db.bak-* files next to it are older copies). If .recover fails with 'SQL logic error', "
                "use a newer sqlite3 from sqlite.org.")


class Unreadable:
    """A JSON column whose text is not JSON (the row was damaged or written by something else)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<not JSON: {self.text[:40]!r}>"


def _lenient_loads(text: Any) -> Any:
    if isinstance(text, (int, float)):  # the column's NUMERIC affinity stored a JSON number as a number
        return text
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return Unreadable(str(text))


def ro_uri(db_path: Path, immutable: bool = False) -> str:
    """The SQLite URI opening ``db_path`` read-only (``immutable=1``: without -wal/-shm files)."""
    return f"file:{quote(str(db_path.absolute()))}?mode=ro" + ("&immutable=1" if immutable else "")


def connect_ro(db_path: Path, immutable: bool | None = None) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection to ``db_path`` and whether it had to be ``immutable``.

    ``immutable=None`` tries ``mode=ro`` first: it sees the latest commits (it reads a -wal file) but
    needs a usable -shm file; where SQLite cannot create or rebuild one it falls back to ``immutable=1``,
    which reads the database file alone (commits still only in a -wal file left by a writer that crashed
    are not seen then).
    """
    for imm in ((False, True) if immutable is None else (immutable,)):
        con = sqlite3.connect(ro_uri(db_path, imm), uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return con, imm
        except sqlite3.OperationalError as exc:
            con.close()
            # "unable to open": no -shm and no right to create one; "readonly": the WAL index cannot be rebuilt;
            # "disk I/O error": no room to create or grow the -shm file (a full disk)
            if imm or not any(w in str(exc) for w in ("unable to open", "readonly", "disk I/O error")):
                raise
    raise AssertionError("unreachable")


def make_engine(db_path: Path, *, immediate: bool = False, foreign_keys: bool = True,
                read_only: bool = False, immutable: bool = False) -> Engine:
    """Return an engine for ``db_path``; ``immediate=True`` makes every transaction ``BEGIN IMMEDIATE``;
    ``read_only=True`` opens every connection with ``mode=ro`` (and ``immutable=1`` if asked)."""
    if read_only:
        engine = create_engine("sqlite://", creator=lambda: connect_ro(db_path, immutable)[0], poolclass=QueuePool,
                               json_deserializer=_lenient_loads)
    else:
        engine = create_engine(
            f"sqlite:///{db_path}",
            connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
            json_deserializer=_lenient_loads,
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module doc)
        cur = dbapi_connection.cursor()
        if read_only:
            cur.execute("PRAGMA query_only=ON")  # belt and braces: nothing on this connection writes
        else:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        if not read_only:
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


def read_revision(db_path: Path, read_only: bool = False) -> str | None:
    """Read ``alembic_version`` without writing anything (``read_only``: through a ``mode=ro`` connection,
    for a folder or file that cannot be written).

    Raises ProjectError when the file is not an SQLite database or not a VGen Studio project.
    """
    try:
        if read_only:
            con = connect_ro(db_path)[0]
        else:
            # mode=rw (not ro): a read-only connection to a WAL database leaves -wal/-shm files behind;
            # this one only reads, and closing it removes them again.
            con = sqlite3.connect(db_path.resolve().as_uri() + "?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc) or "malformed" in str(exc):
            raise damaged_error(db_path, exc) from exc
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
        raise damaged_error(db_path, exc) from exc
    finally:
        con.close()


def damaged_error(db_path: Path, exc: BaseException) -> ProjectError:
    """The error for a database SQLite cannot read at all (garbage, truncated, or not SQLite)."""
    return ProjectError(f"The project database {db_path} is damaged or not an SQLite file ({exc}).",
                        hint=RECOVER_HINT)


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


def migrate_on_open(db_path: Path, *, writable: bool = True) -> str:
    """Bring an existing project database to the head revision; return that revision.

    An older schema is copied to ``project.db.bak-<old revision>`` first; a revision this code
    does not know (made by a newer VGen Studio) is refused and the file is left untouched. With
    ``writable=False`` (a read-only or damaged project) nothing is written: an older schema is refused
    with ProjectReadOnly.
    """
    from sdk.errors import ProjectReadOnly

    known, head = known_revisions()
    current = read_revision(db_path, read_only=not writable)
    if current is None:
        raise ProjectError(f"{db_path} has an empty schema version table.",
                           hint=RECOVER_HINT)
    if current not in known:
        raise ProjectError(
            f"The project {db_path.parent} was made by a newer VGen Studio "
            f"(database schema {current}; this version knows up to {head}).",
            hint="Update VGen Studio to open it. The project was not changed.",
        )
    if current != head:
        if not writable:
            raise ProjectReadOnly(
                f"The project {db_path.parent} was made by an older VGen Studio (database schema {current}) and "
                "must be upgraded before it can be opened, but it is read-only or damaged; it was not changed.",
                hint="Copy the project folder somewhere writable and open the copy (it is upgraded there, "
                     "after a backup).")
        backup_database(db_path, current)
        upgrade(db_path)
    return head
