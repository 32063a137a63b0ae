"""Retention: remove what is older than the service keeps. Idempotent, so two schedulers
running it at once, or a retry, do no harm."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete

from tidings.context import AppContext
from tidings.models import IdempotencyKey, LiveEvent, Notification, ProviderReport

log = logging.getLogger(__name__)

EVENT_DAYS = 7


async def purge_expired(ctx: AppContext) -> dict[str, int]:
    """Delete old notifications (their deliveries cascade), events, idempotency keys and
    provider reports that never found their delivery."""
    now = ctx.clock.now()
    removed: dict[str, int] = {}
    async with ctx.db.transaction() as session:
        for name, stmt in (
            (
                "notifications",
                delete(Notification).where(
                    Notification.created_at < now - timedelta(days=ctx.settings.retention_days)
                ),
            ),
            (
                "live_events",
                delete(LiveEvent).where(LiveEvent.created_at < now - timedelta(days=EVENT_DAYS)),
            ),
            ("idempotency_keys", delete(IdempotencyKey).where(IdempotencyKey.expires_at < now)),
            (
                # a report whose message never got recorded (its send was lost) is moot
                "provider_reports",
                delete(ProviderReport).where(
                    ProviderReport.received_at < now - timedelta(days=EVENT_DAYS)
                ),
            ),
        ):
            result = await session.execute(stmt.execution_options(synchronize_session=False))
            removed[name] = int(result.rowcount)  # type: ignore[attr-defined]
    log.info("retention purge", extra=removed)
    return removed
