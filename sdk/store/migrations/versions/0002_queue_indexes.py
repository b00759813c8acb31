"""Indexes for the queue: claim the next job by (status, position); read a job's log in order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-02
"""
from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.create_index("ix_jobs_status_position", ["status", "position"], unique=False)
    with op.batch_alter_table("job_logs") as batch_op:
        batch_op.create_index("ix_job_logs_job_id_ts", ["job_id", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job_logs") as batch_op:
        batch_op.drop_index("ix_job_logs_job_id_ts")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_status_position")
