"""The inbox item written for a send's live events is the item the inbox API returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tidings.notification.schemas import InboxItem
from tidings.notification.service import item_json

BASE: dict[str, Any] = {
    "id": "0190a0b0-0000-7000-8000-000000000001",
    "send_id": "0190a0b0-0000-7000-8000-000000000002",
    "template": "interview_scheduled",
    "category": "interviews",
    "priority": "high",
    "title": "Interview on Monday",
    "body": "Bring your portfolio",
    "action_url": "https://jobs.example/i/1",
    "data": {"job": {"title": "Engineer"}, "slots": [1, 2]},
    "created_at": datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC),
    "read_at": None,
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"template": None, "action_url": None, "data": None},
        {"read_at": datetime(2026, 3, 2, 8, 0, tzinfo=UTC)},
        # a zone other than UTC, and no microseconds
        {"created_at": datetime(2026, 3, 1, 10, 30, tzinfo=timezone(timedelta(hours=1)))},
    ],
    ids=["full", "nulls", "read", "other-zone"],
)
def test_item_json_is_what_the_model_serializes(changes: dict[str, Any]) -> None:
    values = {**BASE, **changes}
    model = InboxItem(
        **{k: v for k, v in values.items() if k not in ("read_at", "data")},
        data=values["data"] or {},
        read=values["read_at"] is not None,
        read_at=values["read_at"],
    )
    assert item_json(values) == model.model_dump(mode="json")
