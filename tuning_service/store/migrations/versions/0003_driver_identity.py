"""Sweeps: who drives them, beyond host and pid (boot id, pid namespace, start time).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: sweeps recorded before it say only host and pid, and are judged by those.
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("driver", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_column("driver")
