from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.kit.types import JSONValue, UTCDateTime
from tidings.models.base import Base


class WebhookEndpoint(Base):
    """A tenant's HTTPS target for events.

    ``secrets`` lists ``{"secret", "expires_at"}``, newest first: after a rotation the
    previous secret keeps signing (a second ``v1=``) until it expires.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    categories: Mapped[list[str] | None] = mapped_column(JSONValue)
    secrets: Mapped[list[dict[str, Any]]] = mapped_column(JSONValue)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
