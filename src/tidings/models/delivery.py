from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tidings.kit.types import JSONValue, UTCDateTime
from tidings.models.base import Base

ACTIVE_STATUSES = ("pending", "scheduled", "sending")
_ACTIVE = text("status IN ('pending', 'scheduled', 'sending')")
_DIGESTED = text("status = 'scheduled' AND reason = 'digest'")


class Delivery(Base):
    """The outbox: one row per notification, channel and target."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "not_before", postgresql_where=_ACTIVE, sqlite_where=_ACTIVE),
        Index(None, "tenant_id", "send_id"),
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "notification_id"),
        Index(None, "provider_message_id"),
        Index(
            "ix_deliveries_digest",
            "tenant_id",
            "recipient_id",
            "digest_key",
            postgresql_where=_DIGESTED,
            sqlite_where=_DIGESTED,
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    send_id: Mapped[str] = mapped_column(String(36))
    notification_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("notifications.id", ondelete="CASCADE")
    )
    recipient_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    # pending/scheduled rows become due at not_before; sending rows at their lease's end
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(64))
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    segments: Mapped[int | None] = mapped_column(Integer)  # SMS parts billed
    # a webhook delivery's event ({id, type, created_at, data}), fixed when it was created
    # so that every retry carries the same event
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONValue)
    # e-mail folded into a digest: the period it waits for (status scheduled, reason digest)
    digest_key: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
