from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tidings.kit.types import JSONValue, UTCDateTime
from tidings.models.base import Base

# Written as each database writes the inbox queries' conditions (`visible = true` on
# PostgreSQL, `visible = 1` on SQLite), so both planners can prove the index applies.
_UNREAD = "read_at IS NULL AND archived_at IS NULL AND visible"


class Notification(Base):
    """One inbox item: what one recipient was told by one send, rendered at creation."""

    __tablename__ = "notifications"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "recipient_id"],
            ["recipients.tenant_id", "recipients.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("send_id", "recipient_id"),
        Index(None, "tenant_id", "recipient_id", "created_at", "id"),
        Index(
            "ix_notifications_unread",
            "tenant_id",
            "recipient_id",
            "created_at",
            postgresql_where=text(_UNREAD),
            sqlite_where=text(_UNREAD + " = 1"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    send_id: Mapped[str] = mapped_column(String(36), ForeignKey("sends.id", ondelete="CASCADE"))
    recipient_id: Mapped[str] = mapped_column(String(128))
    template: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    action_url: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    content: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    # False while the in-app item must not show (suppressed, or cancelled before its time)
    visible: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
