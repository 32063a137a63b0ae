"""unread counts kept with the live counters

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

from tidings.kit.types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOTIFICATIONS = sa.table(
    "notifications",
    sa.column("tenant_id", sa.String()),
    sa.column("recipient_id", sa.String()),
    sa.column("visible", sa.Boolean()),
    sa.column("created_at", UTCDateTime()),
    sa.column("read_at", UTCDateTime()),
    sa.column("archived_at", UTCDateTime()),
)
_COUNTERS = sa.table(
    "live_counters",
    sa.column("tenant_id", sa.String()),
    sa.column("recipient_id", sa.String()),
    sa.column("seq", sa.BigInteger()),
    sa.column("unread", sa.Integer()),
)


def upgrade() -> None:
    op.add_column(
        "live_counters",
        sa.Column("unread", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    # every user with unread items gets their count now (and a counter if they had none)
    bind = op.get_bind()
    n = _NOTIFICATIONS.c
    counts = bind.execute(
        sa.select(n.tenant_id, n.recipient_id, sa.func.count())
        .where(
            n.visible == sa.true(),
            n.archived_at.is_(None),
            n.read_at.is_(None),
            n.created_at <= datetime.now(UTC),
        )
        .group_by(n.tenant_id, n.recipient_id)
    ).all()
    if not counts:
        return
    insert = (postgresql if bind.dialect.name == "postgresql" else sqlite).insert(_COUNTERS)
    statement = insert.on_conflict_do_update(
        index_elements=["tenant_id", "recipient_id"], set_={"unread": insert.excluded.unread}
    )
    rows = [{"tenant_id": t, "recipient_id": r, "seq": 0, "unread": c} for t, r, c in counts]
    for start in range(0, len(rows), 1000):
        bind.execute(statement, rows[start : start + 1000])


def downgrade() -> None:
    with op.batch_alter_table("live_counters") as batch:
        batch.drop_column("unread")
