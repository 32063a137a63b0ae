from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.kit.types import JSONValue, UTCDateTime
from tidings.models.base import Base


class PreferenceSet(Base):
    """A recipient's own preferences: only the keys they set (the rest comes from the
    tenant's defaults, then the built-in ones). Erased with the recipient."""

    __tablename__ = "preferences"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "recipient_id"],
            ["recipients.tenant_id", "recipients.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Digest(Base):
    """One digest e-mail of one recipient for one period.

    The primary key makes the period's digest unique: two schedulers (or a retry) that
    both build it cannot send two, and the items it folds are claimed in the same
    transaction, so each goes into exactly one digest.
    """

    __tablename__ = "digests"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "recipient_id"],
            ["recipients.tenant_id", "recipients.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    period_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    send_id: Mapped[str] = mapped_column(String(36))
    items: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
