"""Persistence for :class:`sdk.Project`: ORM models, engines, migrations, assets and the render lock.

Nothing here creates an engine at import time; SQLAlchemy/Alembic load on first use.
"""
from __future__ import annotations
