from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.kit.types import UTCDateTime
from tidings.models.base import Base


class ProviderReport(Base):
    """A provider's delivery report that arrived before the delivery recorded the
    provider's message id (the send and its report race); applied when it does."""

    __tablename__ = "provider_reports"

    provider_message_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # the provider's word: delivered, failed...
    error_code: Mapped[str | None] = mapped_column(String(16))
    sender: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
