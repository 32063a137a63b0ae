from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from tidings.auth.deps import CurrentPrincipal
from tidings.deps import Ctx, ReadSession, WriteSession
from tidings.kit.paging import DEFAULT_LIMIT, MAX_LIMIT
from tidings.kit.types import (
    CATEGORY_PATTERN,
    TEMPLATE_KEY_PATTERN,
    UUID_PATTERN,
    AwareDatetime,
)
from tidings.notification import service
from tidings.notification.repository import InboxFilter
from tidings.notification.schemas import (
    InboxItem,
    InboxPage,
    InboxSummary,
    MarkRead,
    UnreadCount,
    Updated,
)
from tidings.ops.responses import errors
from tidings.template.schemas import Priority

router = APIRouter(prefix="/me/notifications", tags=["inbox"])

IdPath = Annotated[str, Path(pattern=UUID_PATTERN)]


@router.get("", response_model=InboxPage, responses=errors(400, 401, 422))
async def list_inbox(
    principal: CurrentPrincipal,
    session: ReadSession,
    ctx: Ctx,
    unread: bool | None = None,
    category: Annotated[str | None, Query(pattern=CATEGORY_PATTERN)] = None,
    priority: Priority | None = None,
    template: Annotated[str | None, Query(pattern=TEMPLATE_KEY_PATTERN)] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> InboxPage:
    """List your inbox, newest first."""
    f = InboxFilter(
        unread=unread,
        category=category,
        priority=priority,
        template=template,
        since=since,
        until=until,
    )
    return await service.list_page(session, ctx, principal, f, limit=limit, cursor=cursor)


@router.get("/unread-count", response_model=UnreadCount, responses=errors(401))
async def unread_count(principal: CurrentPrincipal, session: ReadSession, ctx: Ctx) -> UnreadCount:
    """The exact number of unread items."""
    return await service.unread_count(session, ctx, principal)


@router.get("/summary", response_model=InboxSummary, responses=errors(401))
async def summary(principal: CurrentPrincipal, session: ReadSession, ctx: Ctx) -> InboxSummary:
    """Totals and unread counts, by category and by priority."""
    return await service.summary(session, ctx, principal)


@router.post("/read", response_model=Updated, responses=errors(401, 413, 422))
async def mark_many_read(
    payload: MarkRead, principal: CurrentPrincipal, session: WriteSession, ctx: Ctx
) -> Updated:
    """Mark the given items read."""
    return await service.mark_many_read(session, ctx, principal, list(dict.fromkeys(payload.ids)))


@router.post("/read-all", response_model=Updated, responses=errors(401))
async def mark_all_read(principal: CurrentPrincipal, session: WriteSession, ctx: Ctx) -> Updated:
    """Mark every unread item read."""
    return await service.mark_many_read(session, ctx, principal, None)


@router.get("/{notification_id}", response_model=InboxItem, responses=errors(401, 404, 422))
async def get_item(
    notification_id: IdPath, principal: CurrentPrincipal, session: ReadSession, ctx: Ctx
) -> InboxItem:
    """One item of your inbox."""
    return await service.get(session, ctx, principal, notification_id)


@router.post("/{notification_id}/read", response_model=InboxItem, responses=errors(401, 404, 422))
async def mark_read(
    notification_id: IdPath, principal: CurrentPrincipal, session: WriteSession, ctx: Ctx
) -> InboxItem:
    """Mark an item read."""
    return await service.mark(session, ctx, principal, notification_id, read=True)


@router.post("/{notification_id}/unread", response_model=InboxItem, responses=errors(401, 404, 422))
async def mark_unread(
    notification_id: IdPath, principal: CurrentPrincipal, session: WriteSession, ctx: Ctx
) -> InboxItem:
    """Mark an item unread."""
    return await service.mark(session, ctx, principal, notification_id, read=False)


@router.delete(
    "/{notification_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 404, 422),
)
async def archive(
    notification_id: IdPath, principal: CurrentPrincipal, session: WriteSession, ctx: Ctx
) -> Response:
    """Archive an item: it leaves lists, counts and the summary."""
    await service.archive(session, ctx, principal, notification_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
