from __future__ import annotations

from typing import Literal

from tidings.kit.schema import ResponseModel
from tidings.kit.types import UTCTimestamp

DeliveryStatus = Literal[
    "pending",
    "scheduled",
    "sending",
    "sent",
    "delivered",
    "failed",
    "dead",
    "suppressed",
    "cancelled",
]


class DeliveryRead(ResponseModel):
    id: str
    send_id: str
    notification_id: str
    recipient_id: str
    channel: str
    target: str | None
    status: DeliveryStatus
    reason: str | None
    not_before: UTCTimestamp
    attempts: int
    last_error: str | None
    provider: str | None
    provider_message_id: str | None
    segments: int | None = None
    created_at: UTCTimestamp
    updated_at: UTCTimestamp
    sent_at: UTCTimestamp | None


class DeliveryPage(ResponseModel):
    items: list[DeliveryRead]
    next_cursor: str | None
