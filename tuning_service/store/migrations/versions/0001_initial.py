"""Initial schema: sweeps, trials, epochs, refits.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("sweep_id", sa.String(64), nullable=False),
        sa.Column("job", sa.String(200), nullable=False),
        sa.Column("job_ref", sa.Text(), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(3), nullable=False),
        sa.Column("searcher", sa.String(64), nullable=False),
        sa.Column("scheduler", sa.String(64), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("num_samples", sa.Integer(), nullable=True),
        sa.Column("max_epochs", sa.Integer(), nullable=True),
        sa.Column("space", sa.JSON(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("cluster_address", sa.Text(), nullable=True),
        sa.Column("sweep_dir", sa.Text(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("sweep_id", name="pk_sweeps"),
    )
    op.create_index("ix_sweeps_job", "sweeps", ["job"])
    op.create_index("ix_sweeps_status", "sweeps", ["status"])
    op.create_table(
        "trials",
        sa.Column("sweep_id", sa.String(64), nullable=False),
        sa.Column("trial_id", sa.String(128), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("best_epoch", sa.Integer(), nullable=True),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("train_time_s", sa.Float(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("node_ip", sa.String(64), nullable=True),
        sa.Column("node_id", sa.String(128), nullable=True),
        sa.Column("hostname", sa.String(255), nullable=True),
        sa.Column("checkpoint", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sweep_id"], ["sweeps.sweep_id"], name="fk_trials_sweeps", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sweep_id", "trial_id", name="pk_trials"),
    )
    op.create_index("ix_trials_status_value", "trials", ["status", "value"])
    op.create_table(
        "epochs",
        sa.Column("sweep_id", sa.String(64), nullable=False),
        sa.Column("trial_id", sa.String(128), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("diverged", sa.Boolean(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sweep_id", "trial_id"],
            ["trials.sweep_id", "trials.trial_id"],
            name="fk_epochs_trials",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sweep_id", "trial_id", "epoch", name="pk_epochs"),
    )
    op.create_table(
        "refits",
        sa.Column("sweep_id", sa.String(64), nullable=False),
        sa.Column("trial_id", sa.String(128), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("train_rows", sa.Integer(), nullable=False),
        sa.Column("test_rows", sa.Integer(), nullable=False),
        sa.Column("test_metric", sa.String(200), nullable=False),
        sa.Column("test_value", sa.Float(), nullable=True),
        sa.Column("test_metrics", sa.JSON(), nullable=False),
        sa.Column("model_path", sa.Text(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sweep_id", "trial_id"],
            ["trials.sweep_id", "trials.trial_id"],
            name="fk_refits_trials",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sweep_id", "trial_id", name="pk_refits"),
    )


def downgrade() -> None:
    op.drop_table("refits")
    op.drop_table("epochs")
    op.drop_index("ix_trials_status_value", table_name="trials")
    op.drop_table("trials")
    op.drop_index("ix_sweeps_status", table_name="sweeps")
    op.drop_index("ix_sweeps_job", table_name="sweeps")
    op.drop_table("sweeps")
