"""Retention: remove what is older than the service keeps. Idempotent, so two schedulers
running it at once, or a retry, do no harm."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, inspect, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.context import AppContext
from tidings.models import IdempotencyKey, LiveEvent, Notification, ProviderReport
from tidings.notification import service as inbox

log = logging.getLogger(__name__)

EVENT_DAYS = 7


# rows a purge deletes per transaction: each batch is short, so writers (and, on SQLite,
# the event loop the statements run on) get their turn between batches
BATCH = 2_000


async def purge_expired(ctx: AppContext) -> dict[str, int]:
    """Delete old notifications (their deliveries cascade), events, idempotency keys and
    provider reports that never found their delivery."""
    now = ctx.clock.now()
    removed: dict[str, int] = {}
    for name, entity, expired in (
        (
            "notifications",
            Notification,
            Notification.created_at < now - timedelta(days=ctx.settings.retention_days),
        ),
        ("live_events", LiveEvent, LiveEvent.created_at < now - timedelta(days=EVENT_DAYS)),
        ("idempotency_keys", IdempotencyKey, IdempotencyKey.expires_at < now),
        (
            # a report whose message never got recorded (its send was lost) is moot
            "provider_reports",
            ProviderReport,
            ProviderReport.received_at < now - timedelta(days=EVENT_DAYS),
        ),
    ):
        removed[name] = await _purge(ctx, entity, expired)
    log.info("retention purge", extra=removed)
    return removed


async def _purge(ctx: AppContext, entity: Any, expired: ColumnElement[bool]) -> int:
    """Delete the rows of ``entity`` matching ``expired``, ``BATCH`` a transaction; the
    unread counts of users who lost notifications are counted again."""
    key = tuple_(*inspect(entity).primary_key)
    total = 0
    while True:
        async with ctx.db.transaction() as session:
            batch = select(*inspect(entity).primary_key).where(expired).limit(BATCH)
            statement = (
                delete(entity).where(key.in_(batch)).execution_options(synchronize_session=False)
            )
            if entity is Notification:
                users = await session.execute(
                    statement.returning(Notification.tenant_id, Notification.recipient_id)
                )
                count = await _recount_users(session, ctx, list(users))
            else:
                result = await session.execute(statement)
                count = int(result.rowcount)  # type: ignore[attr-defined]
        total += count
        if count < BATCH:
            return total


async def _recount_users(session: AsyncSession, ctx: AppContext, rows: list[Any]) -> int:
    """Count again the inboxes of the (tenant, user) of deleted rows; returns the rows."""
    by_tenant: dict[str, set[str]] = {}
    for tenant_id, recipient_id in rows:
        by_tenant.setdefault(tenant_id, set()).add(recipient_id)
    for tenant_id, users in by_tenant.items():
        await inbox.recount(session, ctx, tenant_id, sorted(users))
    return len(rows)
