from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.kit.types import JSONValue, UTCDateTime
from tidings.models.base import Base


class Reminder(Base):
    """An interview between a candidate and an employer, with its calendar event and the
    sends that remind both of it.

    ``uid`` and ``sequence`` are the calendar event's identity and revision: every
    invitation, update and cancellation carries them. ``reminder_sends`` are the ids of
    the scheduled ``interview_reminder`` sends, cancelled when the interview moves.
    """

    __tablename__ = "reminders"
    __table_args__ = (
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "tenant_id", "candidate_id"),
        Index(None, "tenant_id", "employer_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), ForeignKey("tenants.id", ondelete="CASCADE"))
    application_id: Mapped[str | None] = mapped_column(String(128))
    candidate_id: Mapped[str] = mapped_column(String(128))
    employer_id: Mapped[str] = mapped_column(String(128))
    interview_time: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    location: Mapped[str | None] = mapped_column(String(1000))
    offsets_minutes: Mapped[list[int]] = mapped_column(JSONValue)
    data: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    uid: Mapped[str] = mapped_column(String(255))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # scheduled, cancelled
    reminder_sends: Mapped[list[dict[str, Any]]] = mapped_column(JSONValue, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
