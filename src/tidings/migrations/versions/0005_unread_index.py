"""unread index usable by the inbox queries on SQLite

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 06:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNREAD = "read_at IS NULL AND archived_at IS NULL AND visible"


def upgrade() -> None:
    # SQLite uses a partial index only when the query repeats its condition term for
    # term; the inbox queries say `visible = 1` there. PostgreSQL's is unchanged.
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_unread")
        batch_op.create_index(
            "ix_notifications_unread",
            ["tenant_id", "recipient_id", "created_at"],
            unique=False,
            sqlite_where=sa.text(_UNREAD + " = 1"),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_unread")
        batch_op.create_index(
            "ix_notifications_unread",
            ["tenant_id", "recipient_id", "created_at"],
            unique=False,
            sqlite_where=sa.text(_UNREAD),
        )
