"""Topics: named sets of recipients in a tenant."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.errors import NotFound
from tidings.kit.cursor import filter_scope
from tidings.kit.paging import decode_position, next_cursor
from tidings.recipient import repository as recipient_repository
from tidings.tenant.service import ensure_tenant
from tidings.topic import repository
from tidings.topic.schemas import (
    Subscriber,
    SubscriberPage,
    SubscribersAdded,
    SubscribersRemoved,
    TopicPage,
    TopicRef,
)


async def subscribe(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    topic: str,
    recipient_ids: list[str],
) -> SubscribersAdded:
    """Add members; recipients never seen before are created empty."""
    await ensure_tenant(session, ctx, principal.tenant)
    now = ctx.clock.now()
    ids = list(dict.fromkeys(recipient_ids))
    existing = await recipient_repository.get_many(session, principal.tenant, ids)
    await recipient_repository.create_empty(
        session, principal.tenant, [r for r in ids if r not in existing], now
    )
    added = await repository.add(session, principal.tenant, topic, ids, now)
    return SubscribersAdded(added=added)


async def unsubscribe(
    session: AsyncSession, principal: Principal, topic: str, recipient_ids: list[str]
) -> SubscribersRemoved:
    removed = await repository.remove(
        session, principal.tenant, topic, list(dict.fromkeys(recipient_ids))
    )
    return SubscribersRemoved(removed=removed)


async def subscribers(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    topic: str,
    *,
    limit: int,
    cursor: str | None,
) -> SubscriberPage:
    scope = filter_scope("topic-subscribers", tenant=principal.tenant, topic=topic)
    after = decode_position(ctx.cursors, cursor, scope)
    rows = await repository.subscribers_page(
        session, principal.tenant, topic, after=after, limit=limit + 1
    )
    items, token = next_cursor(
        ctx.cursors, rows, limit, scope, lambda s: (s.created_at, s.recipient_id)
    )
    return SubscriberPage(
        items=[Subscriber(recipient_id=s.recipient_id, created_at=s.created_at) for s in items],
        next_cursor=token,
    )


async def topics_of(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    recipient_id: str,
    *,
    limit: int,
    cursor: str | None,
) -> TopicPage:
    if await recipient_repository.get(session, principal.tenant, recipient_id) is None:
        raise NotFound(f"recipient {recipient_id!r} does not exist")
    scope = filter_scope("recipient-topics", tenant=principal.tenant, recipient=recipient_id)
    after = decode_position(ctx.cursors, cursor, scope)
    rows = await repository.topics_page(
        session, principal.tenant, recipient_id, after=after, limit=limit + 1
    )
    items, token = next_cursor(ctx.cursors, rows, limit, scope, lambda s: (s.created_at, s.topic))
    return TopicPage(
        items=[TopicRef(topic=s.topic, created_at=s.created_at) for s in items], next_cursor=token
    )
