"""The in-app inbox of the calling user (tenant, sub)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.errors import NotFound
from tidings.kit.cursor import filter_scope
from tidings.kit.paging import decode_position, next_cursor
from tidings.kit.types import format_utc
from tidings.models import Notification
from tidings.notification import repository
from tidings.notification.repository import InboxFilter
from tidings.notification.schemas import (
    InboxItem,
    InboxPage,
    InboxSummary,
    Tally,
    UnreadCount,
    Updated,
)
from tidings.realtime import repository as live
from tidings.realtime import service as realtime


def item(row: Notification | Row[Any]) -> InboxItem:
    """The inbox view of a notification: an ORM row, or a row of ``INBOX_COLUMNS``."""
    return InboxItem(
        id=row.id,
        send_id=row.send_id,
        template=row.template,
        category=row.category,
        priority=row.priority,
        title=row.title,
        body=row.body,
        action_url=row.action_url,
        data=row.data or {},
        created_at=row.created_at,
        read=row.read_at is not None,
        read_at=row.read_at,
    )


def item_json(values: dict[str, Any]) -> dict[str, Any]:
    """The inbox item's JSON (as ``InboxItem`` serializes it) of a notification about to be
    inserted (a dict of its columns).

    The values were built by Tidings itself, already of the item's types: the document is
    written directly, without a model to validate and dump (10,000 of them in a fan-out).
    """
    read_at = values.get("read_at")
    return {
        "id": values["id"],
        "send_id": values["send_id"],
        "template": values["template"],
        "category": values["category"],
        "priority": values["priority"],
        "title": values["title"],
        "body": values["body"],
        "action_url": values["action_url"],
        "data": values["data"] or {},
        "created_at": format_utc(values["created_at"]),
        "read": read_at is not None,
        "read_at": None if read_at is None else format_utc(read_at),
    }


async def announce(
    session: AsyncSession,
    ctx: AppContext,
    tenant_id: str,
    items: Sequence[tuple[str, dict[str, Any]]],
    *,
    new: bool = False,
) -> None:
    """Live events for items that just became visible (``(recipient, item JSON)``): each
    item, then unread counts.

    ``new``: the items were inserted by this transaction, unread and visible now, so each
    user's stored unread count grows by theirs (no count per send). Otherwise (an item
    shown at its send_at, say) the users' inboxes are counted again.
    """
    if not items:
        return
    per_user = Counter(rid for rid, _ in items)
    # each user's items, then their unread count
    wanted = {rid: n + 1 for rid, n in per_user.items()}
    if new:
        reserved = await live.reserve(session, tenant_id, wanted, unread_added=per_user)
        counts = {rid: r.unread for rid, r in reserved.items()}
    else:
        reserved = await live.reserve(session, tenant_id, wanted)
        counts = await _recount(session, ctx, tenant_id, list(per_user))
    events: list[tuple[str, str, dict[str, Any]]] = [
        (rid, "notification.created", entry) for rid, entry in items
    ]
    events += [(rid, "unread_count", {"count": n}) for rid, n in counts.items()]
    await realtime.emit_reserved(session, ctx, tenant_id, events, reserved)


async def recount(
    session: AsyncSession, ctx: AppContext, tenant_id: str, recipient_ids: Sequence[str]
) -> None:
    """Count the inboxes of ``recipient_ids`` again (their items changed without an
    event: hidden at expiry, removed by retention)."""
    ids = list(dict.fromkeys(recipient_ids))
    await live.lock_counters(session, tenant_id, ids)
    await _recount(session, ctx, tenant_id, ids)


async def _recount(
    session: AsyncSession, ctx: AppContext, tenant_id: str, recipient_ids: list[str]
) -> dict[str, int]:
    """The exact unread counts, stored with the counters. The counters are locked first
    (by the caller), so the count sees every item committed before."""
    counts = await repository.unread_counts(session, tenant_id, recipient_ids, ctx.clock.now())
    await live.set_unread(session, tenant_id, counts)
    return counts


async def _changed(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    kind: str,
    data: dict[str, Any],
) -> None:
    user = principal.sub
    reserved = await live.reserve(session, principal.tenant, {user: 2})
    counts = await _recount(session, ctx, principal.tenant, [user])
    await realtime.emit_reserved(
        session,
        ctx,
        principal.tenant,
        [(user, kind, data), (user, "unread_count", {"count": counts[user]})],
        reserved,
    )


async def list_page(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    f: InboxFilter,
    *,
    limit: int,
    cursor: str | None,
) -> InboxPage:
    scope = filter_scope("inbox", tenant=principal.tenant, sub=principal.sub, **vars(f))
    after = decode_position(ctx.cursors, cursor, scope)
    rows = await repository.page(
        session, principal.tenant, principal.sub, ctx.clock.now(), f, after=after, limit=limit + 1
    )
    items, token = next_cursor(ctx.cursors, rows, limit, scope, lambda r: (r.created_at, r.id))
    return InboxPage(items=[item(r) for r in items], next_cursor=token)


async def _load(
    session: AsyncSession, ctx: AppContext, principal: Principal, notification_id: str
) -> Notification:
    row = await repository.get(
        session, principal.tenant, principal.sub, notification_id, ctx.clock.now()
    )
    if row is None:
        raise NotFound(f"notification {notification_id!r} is not in your inbox")
    return row


async def get(
    session: AsyncSession, ctx: AppContext, principal: Principal, notification_id: str
) -> InboxItem:
    return item(await _load(session, ctx, principal, notification_id))


async def mark(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    notification_id: str,
    *,
    read: bool,
) -> InboxItem:
    now = ctx.clock.now()
    row = await _load(session, ctx, principal, notification_id)
    changed = await repository.set_read(
        session,
        principal.tenant,
        principal.sub,
        now,
        read_at=now if read else None,
        ids=[notification_id],
    )
    if changed:
        kind, data = (
            ("notification.read", {"ids": changed})
            if read
            else ("notification.unread", {"id": notification_id})
        )
        await _changed(session, ctx, principal, kind, data)
    await session.refresh(row)
    return item(row)


async def mark_many_read(
    session: AsyncSession, ctx: AppContext, principal: Principal, ids: list[str] | None
) -> Updated:
    """Mark the given items (or, with None, every unread item) read."""
    now = ctx.clock.now()
    changed = await repository.set_read(
        session, principal.tenant, principal.sub, now, read_at=now, ids=ids
    )
    if changed:
        await _changed(session, ctx, principal, "notification.read", {"ids": changed})
    return Updated(updated=len(changed))


async def archive(
    session: AsyncSession, ctx: AppContext, principal: Principal, notification_id: str
) -> None:
    if not await repository.archive(
        session, principal.tenant, principal.sub, notification_id, ctx.clock.now()
    ):
        raise NotFound(f"notification {notification_id!r} is not in your inbox")
    await _changed(session, ctx, principal, "notification.deleted", {"id": notification_id})


async def unread_count(session: AsyncSession, ctx: AppContext, principal: Principal) -> UnreadCount:
    count = await repository.unread_count(session, principal.tenant, principal.sub, ctx.clock.now())
    return UnreadCount(count=count)


async def summary(session: AsyncSession, ctx: AppContext, principal: Principal) -> InboxSummary:
    rows = await repository.tallies(session, principal.tenant, principal.sub, ctx.clock.now())
    by_category: dict[str, Tally] = {}
    by_priority: dict[str, Tally] = {}
    total = unread = 0
    for category, priority, n, n_unread in rows:
        n_unread = int(n_unread or 0)
        total += n
        unread += n_unread
        for table, name in ((by_category, category), (by_priority, priority)):
            tally = table.setdefault(name, Tally(total=0, unread=0))
            tally.total += n
            tally.unread += n_unread
    return InboxSummary(
        total=total, unread=unread, by_category=by_category, by_priority=by_priority
    )
