from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tidings.kit.schema import RequestModel, ResponseModel
from tidings.kit.types import (
    RECIPIENT_ID_PATTERN,
    AwareDatetime,
    Category,
    CleanStr,
    JSONObject,
    RecipientId,
    TemplateKey,
    UTCTimestamp,
)
from tidings.template.schemas import Channel, Priority

RESERVED_DATA_KEYS = frozenset(
    {"recipient", "tenant", "notification", "unsubscribe_url", "inbox_url"}
)
MAX_RECIPIENTS = 1000
MAX_BULK_ITEMS = 1000


class SendCreate(RequestModel):
    """A template + data, or a literal title/body, for up to 1,000 recipients."""

    recipients: list[RecipientId] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    topic: CleanStr | None = Field(
        None, pattern=RECIPIENT_ID_PATTERN, description="Also send to every member of this topic"
    )
    template: TemplateKey | None = None
    data: JSONObject = Field(default_factory=dict)
    title: CleanStr | None = Field(None, min_length=1, max_length=1000)
    body: CleanStr | None = Field(None, min_length=1, max_length=20_000)
    action_url: CleanStr | None = Field(None, max_length=2048)
    channels: list[Channel] | None = Field(None, min_length=1, max_length=5)
    category: Category | None = None
    priority: Priority | None = None
    send_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    idempotency_key: CleanStr | None = Field(None, min_length=1, max_length=255)

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not repeat a channel")
        return value

    @model_validator(mode="after")
    def _one_kind_of_content(self) -> SendCreate:
        if not self.recipients and self.topic is None:
            raise ValueError("give recipients, a topic, or both")
        literal = self.title is not None or self.body is not None or self.action_url is not None
        if self.template is not None and literal:
            raise ValueError("give either template or title+body, not both")
        if self.template is None and (self.title is None or self.body is None):
            raise ValueError("give either template or both title and body")
        if self.template is None and self.data:
            raise ValueError("data is only used with a template")
        reserved = RESERVED_DATA_KEYS & self.data.keys()
        if reserved:
            raise ValueError("data must not use the reserved names: " + ", ".join(sorted(reserved)))
        if self.send_at and self.expires_at and self.expires_at <= self.send_at:
            raise ValueError("expires_at must be after send_at")
        return self

    def fingerprint_body(self) -> dict[str, Any]:
        """The body as compared for idempotency: canonical, without the key."""
        return self.model_dump(mode="json", exclude={"idempotency_key"}, exclude_unset=True)


class BulkSendCreate(RequestModel):
    items: list[SendCreate] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


class NotificationRef(ResponseModel):
    id: str
    recipient_id: str


SendStatus = Literal["accepted", "scheduled", "processing", "completed", "cancelled"]


class SendAccepted(ResponseModel):
    id: str
    status: SendStatus
    notifications: list[NotificationRef] | None = Field(
        description="One per recipient; null for topic sends, which expand later"
    )


class BulkSendAccepted(ResponseModel):
    items: list[SendAccepted]


class SendRead(ResponseModel):
    id: str
    status: SendStatus
    created_at: UTCTimestamp
    send_at: UTCTimestamp | None
    expires_at: UTCTimestamp | None
    counts: dict[str, dict[str, int]] = Field(
        description='Deliveries per channel and status, e.g. {"email": {"sent": 3}}'
    )
