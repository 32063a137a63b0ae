from __future__ import annotations

from pydantic import Field

from tidings.kit.schema import RequestModel, ResponseModel
from tidings.kit.types import RecipientId, UTCTimestamp


class SubscriberChange(RequestModel):
    recipient_ids: list[RecipientId] = Field(min_length=1, max_length=1000)


class SubscribersAdded(ResponseModel):
    added: int = Field(description="Recipients that were not subscribed before")


class SubscribersRemoved(ResponseModel):
    removed: int


class Subscriber(ResponseModel):
    recipient_id: str
    created_at: UTCTimestamp


class SubscriberPage(ResponseModel):
    items: list[Subscriber]
    next_cursor: str | None


class TopicRef(ResponseModel):
    topic: str
    created_at: UTCTimestamp


class TopicPage(ResponseModel):
    items: list[TopicRef]
    next_cursor: str | None
