"""topics

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:21:09.862350
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "topic_subscriptions",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=128), nullable=False),
        sa.Column("recipient_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "recipient_id"],
            ["recipients.tenant_id", "recipients.id"],
            name=op.f("fk_topic_subscriptions_tenant_id_recipient_id_recipients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "topic", "recipient_id", name=op.f("pk_topic_subscriptions")
        ),
    )
    with op.batch_alter_table("topic_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_topic_subscriptions_tenant_id_recipient_id"),
            ["tenant_id", "recipient_id"],
            unique=False,
        )

    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.add_column(sa.Column("topic", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("expanded_through", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("expanded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("expansion_lease_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_sends_unexpanded",
            ["created_at"],
            unique=False,
            postgresql_where=sa.text("topic IS NOT NULL AND expanded_at IS NULL"),
            sqlite_where=sa.text("topic IS NOT NULL AND expanded_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_sends_unexpanded",
            postgresql_where=sa.text("topic IS NOT NULL AND expanded_at IS NULL"),
            sqlite_where=sa.text("topic IS NOT NULL AND expanded_at IS NULL"),
        )
        batch_op.drop_column("expansion_lease_until")
        batch_op.drop_column("expanded_at")
        batch_op.drop_column("expanded_through")
        batch_op.drop_column("topic")

    with op.batch_alter_table("topic_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_topic_subscriptions_tenant_id_recipient_id"))

    op.drop_table("topic_subscriptions")
