from __future__ import annotations

from typing import Any

from pydantic import Field

from tidings.kit.schema import RequestModel, ResponseModel
from tidings.kit.types import CleanStr, JSONObject, UTCTimestamp
from tidings.kit.validators import EmailAddress, Locale, PhoneNumber, TimeZoneName


class RecipientUpsert(RequestModel):
    """Merge semantics: omitted fields keep their value, ``null`` clears one."""

    name: CleanStr | None = Field(None, max_length=200)
    email: EmailAddress | None = None
    phone: PhoneNumber | None = Field(None, description="E.164, e.g. +14155550123")
    locale: Locale | None = Field(None, description="e.g. en, de-AT")
    timezone: TimeZoneName | None = Field(None, description="IANA zone, e.g. Europe/Berlin")
    data: JSONObject | None = Field(None, description="Custom data available to templates")


class RecipientRead(ResponseModel):
    id: str
    name: str | None
    email: str | None
    phone: str | None
    locale: str | None
    timezone: str | None
    data: dict[str, Any]
    created_at: UTCTimestamp
    updated_at: UTCTimestamp


class RecipientPage(ResponseModel):
    items: list[RecipientRead]
    next_cursor: str | None


class ExportedNotification(ResponseModel):
    id: str
    send_id: str
    template: str | None
    category: str
    priority: str
    title: str
    body: str
    action_url: str | None
    data: dict[str, Any]
    content: dict[str, Any] = Field(description="What was rendered for each other channel")
    created_at: UTCTimestamp
    read_at: UTCTimestamp | None
    archived_at: UTCTimestamp | None


class ExportedDelivery(ResponseModel):
    id: str
    notification_id: str
    channel: str
    target: str | None
    status: str
    reason: str | None
    attempts: int
    provider: str | None
    created_at: UTCTimestamp
    sent_at: UTCTimestamp | None


class ExportedTopic(ResponseModel):
    topic: str
    created_at: UTCTimestamp


class ExportedPushSubscription(ResponseModel):
    id: str
    endpoint: str
    user_agent: str | None
    created_at: UTCTimestamp


class ExportedOptOut(ResponseModel):
    channel: str
    scope: str = Field(description="E-mail: a category or `*`; SMS: the sender that was stopped")
    created_at: UTCTimestamp


class RecipientExport(ResponseModel):
    """Everything Tidings stores about one recipient."""

    recipient: RecipientRead
    topics: list[ExportedTopic]
    notifications: list[ExportedNotification]
    deliveries: list[ExportedDelivery]
    push_subscriptions: list[ExportedPushSubscription]
    opt_outs: list[ExportedOptOut]
