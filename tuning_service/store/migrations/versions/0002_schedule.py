"""Scheduled sweeps: run history and per-sweep locks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_runs",
        sa.Column("run_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("job", sa.String(200), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("sweep_id", sa.String(64), nullable=True),
        sa.Column("submission_id", sa.String(200), nullable=True),
        sa.Column("warm_start", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(200), nullable=True),
        sa.Column("mode", sa.String(3), nullable=True),
        sa.Column("best_value", sa.Float(), nullable=True),
        sa.Column("change", sa.JSON(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_schedule_runs"),
    )
    op.create_index("ix_schedule_runs_name_scheduled_for", "schedule_runs", ["name", "scheduled_for"])
    op.create_table(
        "schedule_locks",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_schedule_locks"),
    )


def downgrade() -> None:
    op.drop_table("schedule_locks")
    op.drop_index("ix_schedule_runs_name_scheduled_for", table_name="schedule_runs")
    op.drop_table("schedule_runs")
