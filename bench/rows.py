"""Raw rows of the Tidings schema, for the baselines and the bulk loader.

The values match what Tidings writes for a literal in-app send (see
``tidings.send.service.materialize``): the same columns, JSON as text, timestamps as
SQLAlchemy stores them (naive UTC text on SQLite, timestamptz on PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

SEND_COLUMNS = (
    "id",
    "tenant_id",
    "template",
    "category",
    "priority",
    "channels",
    "request",
    "idempotency_key",
    "created_at",
    "send_at",
    "expires_at",
    "cancelled_at",
    "topic",
    "expanded_through",
    "expanded_at",
    "expansion_lease_until",
)
NOTIFICATION_COLUMNS = (
    "id",
    "tenant_id",
    "send_id",
    "recipient_id",
    "template",
    "category",
    "priority",
    "title",
    "body",
    "action_url",
    "data",
    "content",
    "visible",
    "created_at",
    "read_at",
    "archived_at",
)
DELIVERY_COLUMNS = (
    "id",
    "tenant_id",
    "send_id",
    "notification_id",
    "recipient_id",
    "channel",
    "target",
    "status",
    "reason",
    "not_before",
    "expires_at",
    "attempts",
    "last_error",
    "provider",
    "provider_message_id",
    "created_at",
    "updated_at",
    "sent_at",
)


EVENT_COLUMNS = ("tenant_id", "recipient_id", "seq", "type", "data", "created_at")
# Tidings' live counter upsert (tidings.realtime.repository.reserve): seqs and unread items
# added to each user's counter, returning the last seq taken and the unread count
COUNTERS_INTO = "INSERT INTO live_counters (tenant_id, recipient_id, seq, unread)"
COUNTERS_CONFLICT = (
    " ON CONFLICT (tenant_id, recipient_id) DO UPDATE SET"
    " seq = live_counters.seq + excluded.seq, unread = live_counters.unread + excluded.unread"
    " RETURNING recipient_id, seq, unread"
)


def insert_sql(kind: str, table: str, columns: Sequence[str]) -> str:
    mark = "?" if kind == "sqlite" else "%s"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)})"


def copy_sql(table: str, columns: Sequence[str]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN"


def ts(kind: str, value: datetime | None) -> Any:
    """A timestamp as the driver should receive it for a UTCDateTime column."""
    if value is None:
        return None
    if kind == "sqlite":
        return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def boolean(kind: str, value: bool) -> Any:
    return int(value) if kind == "sqlite" else value


def send_row(
    kind: str, send_id: str, tenant: str, now: datetime, request: dict[str, Any]
) -> tuple[Any, ...]:
    return (
        send_id,
        tenant,
        None,
        "general",
        "normal",
        json.dumps(["in_app"]),
        json.dumps(request),
        None,
        ts(kind, now),
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )


def item_json(
    notification_id: str, send_id: str, created_at: Any, *, title: str = "t", body: str = "b"
) -> str:
    """The ``notification.created`` event's data of a literal in-app item (the inbox item
    Tidings logs), as JSON text; ``created_at`` as the driver takes it."""
    stamp = created_at if isinstance(created_at, str) else created_at.isoformat()
    return json.dumps(
        {
            "id": notification_id,
            "send_id": send_id,
            "template": None,
            "category": "general",
            "priority": "normal",
            "title": title,
            "body": body,
            "action_url": None,
            "data": {},
            "created_at": stamp,
            "read": False,
            "read_at": None,
        }
    )


def event_rows(
    tenant: str,
    notifications: Sequence[Sequence[Any]],
    counters: Sequence[Sequence[Any]],
    *,
    title: str = "t",
    body: str = "b",
) -> list[tuple[Any, ...]]:
    """Each notification's ``notification.created`` and ``unread_count`` live events (rows
    of ``EVENT_COLUMNS``), with the seqs its recipient's counter upsert returned
    (``(recipient, last seq, unread)``: two seqs taken, the item's first)."""
    taken = {recipient: (seq, unread) for recipient, seq, unread in counters}
    events: list[tuple[Any, ...]] = []
    for notification_id, _tenant, send_id, recipient, *rest in notifications:
        seq, unread = taken[recipient]
        created = rest[9]  # created_at, as the driver takes it
        item = item_json(notification_id, send_id, created, title=title, body=body)
        events.append((tenant, recipient, seq - 1, "notification.created", item, created))
        count = json.dumps({"count": unread})
        events.append((tenant, recipient, seq, "unread_count", count, created))
    return events


def notification_row(
    kind: str,
    notification_id: str,
    tenant: str,
    send_id: str,
    recipient: str,
    created_at: datetime,
    *,
    title: str = "t",
    body: str = "b",
    read_at: datetime | None = None,
) -> tuple[Any, ...]:
    return (
        notification_id,
        tenant,
        send_id,
        recipient,
        None,
        "general",
        "normal",
        title,
        body,
        None,
        "{}",
        "{}",
        boolean(kind, True),
        ts(kind, created_at),
        ts(kind, read_at),
        None,
    )


def delivery_row(
    kind: str,
    delivery_id: str,
    tenant: str,
    send_id: str,
    notification_id: str,
    recipient: str,
    now: datetime,
) -> tuple[Any, ...]:
    """An in-app delivery: delivered when its notification commits."""
    stamp = ts(kind, now)
    return (
        delivery_id,
        tenant,
        send_id,
        notification_id,
        recipient,
        "in_app",
        recipient,
        "delivered",
        None,
        stamp,
        None,
        0,
        None,
        None,
        None,
        stamp,
        stamp,
        stamp,
    )


def copy_text(row: Sequence[Any]) -> str:
    """One line of PostgreSQL's COPY text format (the values here need no escaping)."""
    out = []
    for value in row:
        if value is None:
            out.append("\\N")
        elif isinstance(value, bool):
            out.append("t" if value else "f")
        elif isinstance(value, datetime):
            out.append(value.isoformat())
        else:
            out.append(str(value))
    return "\t".join(out) + "\n"
