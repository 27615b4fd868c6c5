"""Schedule locks: which scheduler holds one, beyond host and pid (boot id, pid namespace, start time).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: locks taken before it are judged by host and pid.
    with op.batch_alter_table("schedule_locks") as batch:
        batch.add_column(sa.Column("process", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedule_locks") as batch:
        batch.drop_column("process")
