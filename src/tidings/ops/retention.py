"""Retention: remove what is older than the service keeps. Idempotent, so two schedulers
running it at once, or a retry, do no harm."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, inspect, select, tuple_

from tidings.context import AppContext
from tidings.models import IdempotencyKey, LiveEvent, Notification, ProviderReport

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
    """Delete the rows of ``entity`` matching ``expired``, ``BATCH`` a transaction."""
    key = tuple_(*inspect(entity).primary_key)
    total = 0
    while True:
        async with ctx.db.transaction() as session:
            batch = select(*inspect(entity).primary_key).where(expired).limit(BATCH)
            result = await session.execute(
                delete(entity).where(key.in_(batch)).execution_options(synchronize_session=False)
            )
        count = int(result.rowcount)  # type: ignore[attr-defined]
        total += count
        if count < BATCH:
            return total
