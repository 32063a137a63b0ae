"""Topic memberships; every query is scoped by tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import dialect_insert, newest_first
from tidings.models import TopicSubscription


async def add(
    session: AsyncSession, tenant_id: str, topic: str, recipient_ids: Sequence[str], now: datetime
) -> int:
    """Subscribe; returns how many were not members before."""
    rows = [
        {"tenant_id": tenant_id, "topic": topic, "recipient_id": rid, "created_at": now}
        for rid in recipient_ids
    ]
    stmt = (
        dialect_insert(session, TopicSubscription)
        .on_conflict_do_nothing(index_elements=["tenant_id", "topic", "recipient_id"])
        .returning(TopicSubscription.recipient_id)
    )
    result = await session.execute(stmt, rows)
    return len(result.all())


async def remove(
    session: AsyncSession, tenant_id: str, topic: str, recipient_ids: Sequence[str]
) -> int:
    result = await session.execute(
        delete(TopicSubscription).where(
            TopicSubscription.tenant_id == tenant_id,
            TopicSubscription.topic == topic,
            TopicSubscription.recipient_id.in_(list(recipient_ids)),
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def count(session: AsyncSession, tenant_id: str, topic: str) -> int:
    value = await session.scalar(
        select(func.count())
        .select_from(TopicSubscription)
        .where(TopicSubscription.tenant_id == tenant_id, TopicSubscription.topic == topic)
    )
    return int(value or 0)


async def subscribers_page(
    session: AsyncSession,
    tenant_id: str,
    topic: str,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[TopicSubscription]:
    query = select(TopicSubscription).where(
        TopicSubscription.tenant_id == tenant_id, TopicSubscription.topic == topic
    )
    query = newest_first(
        query,
        TopicSubscription.created_at,
        TopicSubscription.recipient_id,
        after=after,
        limit=limit,
    )
    return (await session.scalars(query)).all()


async def topics_page(
    session: AsyncSession,
    tenant_id: str,
    recipient_id: str,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[TopicSubscription]:
    query = select(TopicSubscription).where(
        TopicSubscription.tenant_id == tenant_id, TopicSubscription.recipient_id == recipient_id
    )
    query = newest_first(
        query, TopicSubscription.created_at, TopicSubscription.topic, after=after, limit=limit
    )
    return (await session.scalars(query)).all()


async def member_batch(
    session: AsyncSession, tenant_id: str, topic: str, *, after: str | None, limit: int
) -> list[str]:
    """The next ``limit`` member ids in id order (keyset: no offset, no big transaction)."""
    query = select(TopicSubscription.recipient_id).where(
        TopicSubscription.tenant_id == tenant_id, TopicSubscription.topic == topic
    )
    if after is not None:
        query = query.where(TopicSubscription.recipient_id > after)
    query = query.order_by(TopicSubscription.recipient_id).limit(limit)
    return list(await session.scalars(query))


async def all_for_recipient(
    session: AsyncSession, tenant_id: str, recipient_id: str
) -> Sequence[TopicSubscription]:
    return (
        await session.scalars(
            select(TopicSubscription)
            .where(
                TopicSubscription.tenant_id == tenant_id,
                TopicSubscription.recipient_id == recipient_id,
            )
            .order_by(TopicSubscription.topic)
        )
    ).all()
