"""The outbox: atomic claims with a lease, outcomes fenced by the claim, the delivery log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import dialect_insert, is_postgresql, newest_first
from tidings.models import Delivery, Lease, Notification, Suppression


def _due(now: datetime, pending_grace: timedelta = timedelta(0)) -> Any:
    """Rows that may be claimed now: pending or scheduled and due, or an abandoned claim."""
    return or_(
        # e-mail waiting for a digest is collected by the digest builder, never sent alone
        and_(
            Delivery.status == "scheduled",
            Delivery.not_before <= now,
            Delivery.reason.is_distinct_from("digest"),
        ),
        # a retry is handed over by nobody but the sweeper: due at its backoff's end
        and_(Delivery.status == "pending", Delivery.reason == "retry", Delivery.not_before <= now),
        # fresh rows are handed over after commit; the sweeper only catches the dropped ones
        and_(
            Delivery.status.in_(("pending", "sending")), Delivery.not_before <= now - pending_grace
        ),
    )


async def claim(
    session: AsyncSession, ids: Sequence[str], now: datetime, lease: timedelta
) -> list[tuple[str, int]]:
    """Atomically take due rows among ``ids``: (id, attempt number) of each row won.

    ``sending`` with ``not_before`` = lease end; a worker that dies leaves a row the
    sweeper reclaims once the lease has passed. The attempt number fences late writers.
    """
    candidates = select(Delivery.id).where(Delivery.id.in_(list(ids)), _due(now))
    if is_postgresql(session):
        candidates = candidates.with_for_update(skip_locked=True)
    result = await session.execute(
        update(Delivery)
        .where(Delivery.id.in_(candidates.scalar_subquery()), _due(now))
        .values(
            status="sending",
            not_before=now + lease,
            attempts=Delivery.attempts + 1,
            updated_at=now,
        )
        .returning(Delivery.id, Delivery.attempts)
        .execution_options(synchronize_session=False)
    )
    return [(row[0], row[1]) for row in result]


async def due_ids(
    session: AsyncSession, now: datetime, *, limit: int, pending_grace: timedelta
) -> list[str]:
    """Rows nobody carried: scheduled ones due, pending ones past the grace, expired claims."""
    rows = await session.scalars(
        select(Delivery.id)
        .where(Delivery.status.in_(("pending", "scheduled", "sending")), _due(now, pending_grace))
        .order_by(Delivery.not_before)
        .limit(limit)
    )
    return list(rows)


@dataclass(frozen=True)
class Claimed:
    delivery: Delivery
    notification: Notification


async def load_claimed(session: AsyncSession, ids: Sequence[str]) -> list[Claimed]:
    rows = await session.execute(
        select(Delivery, Notification)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(Delivery.id.in_(list(ids)))
    )
    return [Claimed(delivery=d, notification=n) for d, n in rows]


async def record_many(
    session: AsyncSession, outcomes: Sequence[tuple[str, int, dict[str, Any]]]
) -> set[str]:
    """Write each (id, attempt, values) whose claim is still the current one.

    One fencing read (locking the rows on PostgreSQL) and one executemany ``UPDATE``
    per shape of ``values``, instead of a statement per delivery; returns the ids
    written. The write transaction holds the rows (SQLite: the database) from the read
    to the update, so a claim cannot change in between; the ``UPDATE`` repeats the
    fence all the same, so no path can write over a newer claim.
    """
    if not outcomes:
        return set()
    current = select(Delivery.id, Delivery.attempts).where(
        Delivery.id.in_([delivery_id for delivery_id, _, _ in outcomes]),
        Delivery.status == "sending",
    )
    if is_postgresql(session):
        current = current.with_for_update()
    held = {row[0]: row[1] for row in await session.execute(current)}
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for delivery_id, attempt, values in outcomes:
        if held.get(delivery_id) != attempt:
            continue
        shape = tuple(sorted(values))
        shapes.setdefault(shape, []).append(
            {**{f"v_{key}": values[key] for key in shape}, "b_id": delivery_id, "b_at": attempt}
        )
    table = cast(Table, Delivery.__table__)
    for shape, params in shapes.items():
        await session.execute(
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.status == "sending",
                table.c.attempts == bindparam("b_at"),
            )
            .values({key: bindparam(f"v_{key}") for key in shape}),
            params,
        )
    return {param["b_id"] for params in shapes.values() for param in params}


async def suppress_address(
    session: AsyncSession, tenant_id: str, channel: str, address: str, reason: str, now: datetime
) -> None:
    stmt = dialect_insert(session, Suppression).values(
        tenant_id=tenant_id, channel=channel, address=address, reason=reason, created_at=now
    )
    await session.execute(
        stmt.on_conflict_do_nothing(index_elements=["tenant_id", "channel", "address"])
    )


@dataclass(frozen=True)
class DeliveryFilter:
    status: str | None = None
    channel: str | None = None
    recipient_id: str | None = None
    send_id: str | None = None


async def page(
    session: AsyncSession,
    tenant_id: str,
    f: DeliveryFilter,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[Delivery]:
    query = select(Delivery).where(Delivery.tenant_id == tenant_id)
    for column, value in (
        (Delivery.status, f.status),
        (Delivery.channel, f.channel),
        (Delivery.recipient_id, f.recipient_id),
        (Delivery.send_id, f.send_id),
    ):
        if value is not None:
            query = query.where(column == value)
    query = newest_first(query, Delivery.created_at, Delivery.id, after=after, limit=limit)
    return (await session.scalars(query)).all()


async def get(session: AsyncSession, tenant_id: str, delivery_id: str) -> Delivery | None:
    return await session.scalar(
        select(Delivery).where(Delivery.tenant_id == tenant_id, Delivery.id == delivery_id)
    )


async def requeue(session: AsyncSession, delivery: Delivery, now: datetime) -> None:
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id, Delivery.status.in_(("dead", "failed")))
        .values(
            status="pending",
            reason=None,
            attempts=0,
            not_before=now,
            updated_at=now,
            # a new attempt is a new message: nothing of the old one may stick to it
            provider=None,
            provider_message_id=None,
            segments=None,
            sent_at=None,
        )
        .execution_options(synchronize_session=False)
    )


async def all_for_recipient(
    session: AsyncSession, tenant_id: str, recipient_id: str
) -> Sequence[Delivery]:
    return (
        await session.scalars(
            select(Delivery)
            .where(Delivery.tenant_id == tenant_id, Delivery.recipient_id == recipient_id)
            .order_by(Delivery.created_at, Delivery.id)
        )
    ).all()


async def acquire_lease(
    session: AsyncSession, name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False while another holds it."""
    stmt = dialect_insert(session, Lease).values(name=name, holder=holder, expires_at=now + ttl)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
        where=or_(Lease.expires_at < now, Lease.holder == holder),
    ).returning(Lease.holder)
    return (await session.execute(stmt)).first() is not None


async def due_with_channels(
    session: AsyncSession, now: datetime, *, limit: int, pending_grace: timedelta
) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(Delivery.id, Delivery.channel)
        .where(Delivery.status.in_(("pending", "scheduled", "sending")), _due(now, pending_grace))
        .order_by(Delivery.not_before)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


async def cancel_for_target(
    session: AsyncSession, tenant_id: str, channel: str, target: str, now: datetime
) -> None:
    """Cancel what has not started for a target that no longer exists."""
    await session.execute(
        update(Delivery)
        .where(
            Delivery.tenant_id == tenant_id,
            Delivery.channel == channel,
            Delivery.target == target,
            Delivery.status.in_(("pending", "scheduled")),
        )
        .values(status="cancelled", reason="target_removed", updated_at=now)
        .execution_options(synchronize_session=False)
    )
