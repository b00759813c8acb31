"""Conditions (condition videos made by extractors, linked to their source) and scores (metrics of outputs).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conditions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("asset_hash", sa.String(length=64), nullable=False),
        sa.Column("extractor", sa.String(length=200), nullable=False),
        sa.Column("extractor_version", sa.String(length=64), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["asset_hash"], ["assets.hash"], name=op.f("fk_conditions_asset_hash_assets")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_conditions_job_id_jobs"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conditions")),
    )
    op.create_index(op.f("ix_conditions_asset_hash"), "conditions", ["asset_hash"], unique=False)
    op.create_index(op.f("ix_conditions_job_id"), "conditions", ["job_id"], unique=False)
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("metric_version", sa.String(length=64), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_scores_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
        sa.UniqueConstraint("job_id", "metric", name=op.f("uq_scores_job_id")),
    )


def downgrade() -> None:
    op.drop_table("scores")
    op.drop_index(op.f("ix_conditions_job_id"), table_name="conditions")
    op.drop_index(op.f("ix_conditions_asset_hash"), table_name="conditions")
    op.drop_table("conditions")
