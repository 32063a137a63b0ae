from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from tidings.auth.deps import ServicePrincipal
from tidings.deps import Ctx, ReadSession, WriteSession
from tidings.kit.paging import DEFAULT_LIMIT, MAX_LIMIT
from tidings.kit.types import RECIPIENT_ID_PATTERN
from tidings.ops.responses import errors
from tidings.topic import service
from tidings.topic.schemas import (
    SubscriberChange,
    SubscriberPage,
    SubscribersAdded,
    SubscribersRemoved,
    TopicPage,
)

router = APIRouter(tags=["topics"])

TopicPath = Annotated[str, Path(pattern=RECIPIENT_ID_PATTERN, max_length=128)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=2048)]


@router.get(
    "/topics/{topic}/subscribers",
    response_model=SubscriberPage,
    responses=errors(400, 401, 403, 422),
)
async def list_subscribers(
    topic: TopicPath,
    principal: ServicePrincipal,
    session: ReadSession,
    ctx: Ctx,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> SubscriberPage:
    """A topic's members, newest first."""
    return await service.subscribers(session, ctx, principal, topic, limit=limit, cursor=cursor)


@router.post(
    "/topics/{topic}/subscribers",
    response_model=SubscribersAdded,
    responses=errors(401, 403, 413, 422),
)
async def add_subscribers(
    topic: TopicPath,
    payload: SubscriberChange,
    principal: ServicePrincipal,
    session: WriteSession,
    ctx: Ctx,
) -> SubscribersAdded:
    """Subscribe recipients to a topic (unknown ids become empty recipients)."""
    return await service.subscribe(session, ctx, principal, topic, payload.recipient_ids)


@router.delete(
    "/topics/{topic}/subscribers",
    response_model=SubscribersRemoved,
    responses=errors(401, 403, 413, 422),
)
async def remove_subscribers(
    topic: TopicPath,
    payload: SubscriberChange,
    principal: ServicePrincipal,
    session: WriteSession,
) -> SubscribersRemoved:
    """Unsubscribe recipients from a topic."""
    return await service.unsubscribe(session, principal, topic, payload.recipient_ids)


@router.get(
    "/recipients/{recipient_id}/topics",
    response_model=TopicPage,
    responses=errors(400, 401, 403, 404, 422),
)
async def recipient_topics(
    recipient_id: Annotated[str, Path(pattern=RECIPIENT_ID_PATTERN, max_length=128)],
    principal: ServicePrincipal,
    session: ReadSession,
    ctx: Ctx,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> TopicPage:
    """The topics a recipient belongs to."""
    return await service.topics_of(
        session, ctx, principal, recipient_id, limit=limit, cursor=cursor
    )
