from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.kit.types import UTCDateTime
from tidings.models.base import Base

ALL_BUT_URGENT = "*"


class EmailOptOut(Base):
    """A recipient's e-mail unsubscribe: ``scope`` is a category (all e-mail of it, urgent
    included) or ``*`` (all e-mail except urgent)."""

    __tablename__ = "email_opt_outs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "recipient_id"],
            ["recipients.tenant_id", "recipients.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SMSOptOut(Base):
    """A STOP sent to one of our senders (a number or messaging service) from a phone.

    Carriers key opt-outs by the pair, whoever the tenant: a number shared by several
    tenants stops for all of them, and START from the same phone undoes it.
    """

    __tablename__ = "sms_opt_outs"

    sender: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
