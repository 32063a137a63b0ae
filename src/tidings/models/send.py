from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tidings.kit.types import JSONValue, UTCDateTime
from tidings.models.base import Base


class Send(Base):
    """One accepted send request (or one bulk item)."""

    __tablename__ = "sends"
    __table_args__ = (
        Index(None, "tenant_id", "created_at", "id"),
        Index(
            "ix_sends_unexpanded",
            "created_at",
            postgresql_where=text("topic IS NOT NULL AND expanded_at IS NULL"),
            sqlite_where=text("topic IS NOT NULL AND expanded_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), ForeignKey("tenants.id", ondelete="CASCADE"))
    template: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(8))
    channels: Mapped[list[str]] = mapped_column(JSONValue)
    request: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # topic sends are expanded later, in batches ordered by recipient id
    topic: Mapped[str | None] = mapped_column(String(128))
    expanded_through: Mapped[str | None] = mapped_column(String(128))
    expanded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expansion_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
