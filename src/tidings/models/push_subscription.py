from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tidings.kit.types import UTCDateTime
from tidings.models.base import Base


class PushSubscription(Base):
    """One browser's Web Push subscription of one user; erased with the recipient.

    An endpoint belongs to one browser profile, so registering it again (for instance
    after another user signs in on that browser) moves it instead of duplicating it.
    """

    __tablename__ = "push_subscriptions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "recipient_id"],
            ["recipients.tenant_id", "recipients.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("tenant_id", "endpoint"),
        Index(None, "tenant_id", "recipient_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    recipient_id: Mapped[str] = mapped_column(String(128))
    endpoint: Mapped[str] = mapped_column(String(2048))
    p256dh: Mapped[str] = mapped_column(String(128))
    auth: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
