"""Outputs can be starred, and deleted with an undo: ``deleted_at`` flags an output moved to ``.trash/`` until its
undo expires (then the row and the files go for good).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.add_column(sa.Column("starred", sa.Boolean(create_constraint=False), nullable=False,
                                      server_default=sa.text("0")))
        batch_op.add_column(sa.Column("deleted_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outputs") as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("starred")
