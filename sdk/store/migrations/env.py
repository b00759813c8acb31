"""Alembic environment for project databases: always run programmatically with a connection.

:func:`sdk.store.db.upgrade` passes an open connection in ``config.attributes["connection"]``;
there is no alembic.ini and no offline (SQL script) mode.
"""
from __future__ import annotations

from alembic import context

from sdk.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run project migrations through sdk.store.db.upgrade(), not the alembic CLI.")

# render_as_batch: SQLite cannot ALTER most things, so batch mode rebuilds tables (autogenerate too).
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
