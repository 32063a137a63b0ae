"""Topic sends: expanded by the runner in idempotent batches, never in one transaction.

Each batch reads the next members in recipient-id order after ``expanded_through``,
creates their notifications and deliveries, and advances ``expanded_through`` in the
same transaction, so a crash repeats at most nothing and skips nothing. A lease on the
send keeps two runners from expanding it at once; the claim is fenced by the lease value.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.context import AppContext, Due
from tidings.kit.jobs import after_commit
from tidings.models import Notification, Send
from tidings.send.service import materialize, plan_from_send
from tidings.topic import repository as topic_repository

log = logging.getLogger(__name__)

BATCH = 1000


async def _claim(
    session: AsyncSession, send_id: str, now: datetime, lease: timedelta
) -> datetime | None:
    """Take the send's expansion lease; returns the lease end, which fences later batches."""
    until = now + lease
    result = await session.execute(
        update(Send)
        .where(
            Send.id == send_id,
            Send.topic.is_not(None),
            Send.expanded_at.is_(None),
            or_(Send.expansion_lease_until.is_(None), Send.expansion_lease_until < now),
        )
        .values(expansion_lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return until if result.rowcount else None  # type: ignore[attr-defined]


async def expand(ctx: AppContext, send_id: str, *, batch: int = BATCH) -> int:
    """Expand a topic send; returns how many notifications this call created."""
    lease = timedelta(seconds=ctx.settings.claim_lease_seconds)
    async with ctx.db.transaction() as session:
        token = await _claim(session, send_id, ctx.clock.now(), lease)
    created = 0
    while token is not None:
        async with ctx.db.transaction() as session:
            token, count = await _expand_batch(session, ctx, send_id, token, lease, batch)
        created += count
    return created


async def _expand_batch(
    session: AsyncSession,
    ctx: AppContext,
    send_id: str,
    token: datetime,
    lease: timedelta,
    batch: int,
) -> tuple[datetime | None, int]:
    """One batch; returns the renewed lease (None when finished or the lease was lost)."""
    now = ctx.clock.now()
    send = await session.scalar(
        select(Send)
        .where(Send.id == send_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if send is None or send.expanded_at is not None or send.topic is None:
        return None, 0
    if send.expansion_lease_until != token:
        log.warning("topic expansion lease lost", extra={"send_id": send_id})
        return None, 0
    if send.cancelled_at is not None:
        send.expanded_at = now
        return None, 0
    members = await topic_repository.member_batch(
        session, send.tenant_id, send.topic, after=send.expanded_through, limit=batch
    )
    if not members:
        send.expanded_at = now
        send.expansion_lease_until = None
        return None, 0
    # recipients named directly (or expanded before a crash) already have theirs
    present = set(
        await session.scalars(
            select(Notification.recipient_id).where(
                Notification.send_id == send_id, Notification.recipient_id.in_(members)
            )
        )
    )
    fresh = [m for m in members if m not in present]
    due: list[Due] = []
    if fresh:
        _refs, due = await materialize(session, ctx, plan_from_send(send), fresh, now)
    send.expanded_through = members[-1]
    send.expansion_lease_until = renewed = now + lease
    if due:
        after_commit(session, lambda: ctx.dispatcher.dispatch(due))
    return renewed, len(fresh)


async def unexpanded(ctx: AppContext, *, limit: int = 20) -> list[str]:
    """Topic sends whose expansion nobody holds (never started, or its runner died)."""
    now = ctx.clock.now()
    async with ctx.db.transaction(write=False) as session:
        rows = await session.scalars(
            select(Send.id)
            .where(
                Send.topic.is_not(None),
                Send.expanded_at.is_(None),
                or_(
                    Send.expansion_lease_until.is_(None),
                    Send.expansion_lease_until < now,
                ),
            )
            .order_by(Send.created_at)
            .limit(limit)
        )
        return list(rows)
