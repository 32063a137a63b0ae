"""Inbox queries: always one tenant and one recipient, never archived or not-yet-visible rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, case, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import newest_first
from tidings.models import Notification

INBOX_COLUMNS = (
    Notification.id,
    Notification.send_id,
    Notification.template,
    Notification.category,
    Notification.priority,
    Notification.title,
    Notification.body,
    Notification.action_url,
    Notification.data,
    Notification.created_at,
    Notification.read_at,
)


@dataclass(frozen=True)
class InboxFilter:
    unread: bool | None = None
    category: str | None = None
    priority: str | None = None
    template: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _owned(tenant_id: str, recipient_id: str, now: datetime) -> list[ColumnElement[bool]]:
    return [
        Notification.tenant_id == tenant_id,
        Notification.recipient_id == recipient_id,
        Notification.visible == true(),
        Notification.archived_at.is_(None),
        Notification.created_at <= now,
    ]


def _filtered(f: InboxFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if f.unread is True:
        clauses.append(Notification.read_at.is_(None))
    elif f.unread is False:
        clauses.append(Notification.read_at.is_not(None))
    if f.category is not None:
        clauses.append(Notification.category == f.category)
    if f.priority is not None:
        clauses.append(Notification.priority == f.priority)
    if f.template is not None:
        clauses.append(Notification.template == f.template)
    if f.since is not None:
        clauses.append(Notification.created_at >= f.since)
    if f.until is not None:
        clauses.append(Notification.created_at < f.until)
    return clauses


async def page(
    session: AsyncSession,
    tenant_id: str,
    recipient_id: str,
    now: datetime,
    f: InboxFilter,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """A page of the inbox as plain rows of the columns an item shows (no ORM objects, and
    no ``content``: every channel's rendered text, which the inbox never shows)."""
    query = select(*INBOX_COLUMNS).where(*_owned(tenant_id, recipient_id, now), *_filtered(f))
    query = newest_first(query, Notification.created_at, Notification.id, after=after, limit=limit)
    return (await session.execute(query)).all()


async def get(
    session: AsyncSession, tenant_id: str, recipient_id: str, notification_id: str, now: datetime
) -> Notification | None:
    return await session.scalar(
        select(Notification).where(
            *_owned(tenant_id, recipient_id, now), Notification.id == notification_id
        )
    )


async def set_read(
    session: AsyncSession,
    tenant_id: str,
    recipient_id: str,
    now: datetime,
    *,
    read_at: datetime | None,
    ids: Sequence[str] | None = None,
) -> list[str]:
    """Mark items read (``read_at``) or unread (None); returns the ids whose state changed."""
    clauses = _owned(tenant_id, recipient_id, now)
    clauses.append(
        Notification.read_at.is_(None) if read_at is not None else Notification.read_at.is_not(None)
    )
    if ids is not None:
        clauses.append(Notification.id.in_(list(ids)))
    result = await session.execute(
        update(Notification)
        .where(*clauses)
        .values(read_at=read_at)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def archive(
    session: AsyncSession, tenant_id: str, recipient_id: str, notification_id: str, now: datetime
) -> bool:
    result = await session.execute(
        update(Notification)
        .where(*_owned(tenant_id, recipient_id, now), Notification.id == notification_id)
        .values(archived_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# the unread counts, built once (building the expression cost more than running it)
_UNREAD = (
    Notification.tenant_id == bindparam("tenant_id"),
    Notification.visible == true(),
    Notification.archived_at.is_(None),
    Notification.read_at.is_(None),
    Notification.created_at <= bindparam("now"),
)
_UNREAD_COUNT = (
    select(func.count())
    .select_from(Notification)
    .where(*_UNREAD, Notification.recipient_id == bindparam("recipient_id"))
)
_UNREAD_COUNTS = (
    select(Notification.recipient_id, func.count())
    .where(*_UNREAD, Notification.recipient_id.in_(bindparam("ids", expanding=True)))
    .group_by(Notification.recipient_id)
)


async def unread_count(
    session: AsyncSession, tenant_id: str, recipient_id: str, now: datetime
) -> int:
    count = await session.scalar(
        _UNREAD_COUNT, {"tenant_id": tenant_id, "recipient_id": recipient_id, "now": now}
    )
    return int(count or 0)


async def tallies(
    session: AsyncSession, tenant_id: str, recipient_id: str, now: datetime
) -> list[Any]:
    """(category, priority, total, unread) for the recipient's inbox."""
    unread = func.sum(case((Notification.read_at.is_(None), 1), else_=0))
    rows = await session.execute(
        select(Notification.category, Notification.priority, func.count(), unread)
        .where(*_owned(tenant_id, recipient_id, now))
        .group_by(Notification.category, Notification.priority)
    )
    return list(rows)


async def all_for_recipient(
    session: AsyncSession, tenant_id: str, recipient_id: str
) -> Sequence[Notification]:
    """Every notification of a recipient, archived and not yet visible ones included."""
    return (
        await session.scalars(
            select(Notification)
            .where(Notification.tenant_id == tenant_id, Notification.recipient_id == recipient_id)
            .order_by(Notification.created_at, Notification.id)
        )
    ).all()


async def unread_counts(
    session: AsyncSession, tenant_id: str, recipient_ids: Sequence[str], now: datetime
) -> dict[str, int]:
    """Exact unread counts of several recipients in one query."""
    ids = list(set(recipient_ids))
    counts = dict.fromkeys(ids, 0)
    for start in range(0, len(ids), 500):
        rows = await session.execute(
            _UNREAD_COUNTS, {"tenant_id": tenant_id, "ids": ids[start : start + 500], "now": now}
        )
        counts.update({rid: int(n) for rid, n in rows})
    return counts
