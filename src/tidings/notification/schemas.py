from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from tidings.kit.schema import RequestModel, ResponseModel
from tidings.kit.types import UUID_PATTERN, CleanStr, UTCTimestamp
from tidings.template.schemas import Priority

NotificationId = Annotated[CleanStr, Field(pattern=UUID_PATTERN)]


class InboxItem(ResponseModel):
    id: str
    send_id: str
    template: str | None
    category: str
    priority: Priority
    title: str
    body: str
    action_url: str | None
    data: dict[str, Any]
    created_at: UTCTimestamp
    read: bool
    read_at: UTCTimestamp | None


class InboxPage(ResponseModel):
    items: list[InboxItem]
    next_cursor: str | None


class MarkRead(RequestModel):
    ids: list[NotificationId] = Field(min_length=1, max_length=1000)


class Updated(ResponseModel):
    updated: int


class UnreadCount(ResponseModel):
    count: int


class Tally(ResponseModel):
    total: int
    unread: int


class InboxSummary(ResponseModel):
    total: int
    unread: int
    by_category: dict[str, Tally]
    by_priority: dict[str, Tally]
