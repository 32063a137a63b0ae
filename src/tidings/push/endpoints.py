from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status

from tidings.auth.deps import CurrentPrincipal
from tidings.deps import Ctx, ReadSession, WriteSession
from tidings.errors import Unprocessable
from tidings.kit.paging import DEFAULT_LIMIT, MAX_LIMIT
from tidings.ops.responses import errors
from tidings.push import service
from tidings.push.schemas import (
    PushSubscriptionCreate,
    PushSubscriptionDelete,
    PushSubscriptionPage,
    PushSubscriptionRead,
    VapidPublicKey,
)

router = APIRouter(tags=["push"])

_DELETE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": PushSubscriptionDelete.model_json_schema()}},
    }
}


@router.get("/push/vapid-public-key", response_model=VapidPublicKey)
async def vapid_public_key(ctx: Ctx) -> VapidPublicKey:
    """The application server key a browser subscribes with."""
    return VapidPublicKey(public_key=ctx.vapid_public_key)


@router.get(
    "/me/push-subscriptions", response_model=PushSubscriptionPage, responses=errors(400, 401, 422)
)
async def list_subscriptions(
    principal: CurrentPrincipal,
    session: ReadSession,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> PushSubscriptionPage:
    """Your browsers' push subscriptions, newest first."""
    return await service.list_page(session, ctx, principal, limit=limit, cursor=cursor)


@router.post(
    "/me/push-subscriptions",
    response_model=PushSubscriptionRead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": PushSubscriptionRead}, **errors(401, 413, 422)},
)
async def subscribe(
    payload: PushSubscriptionCreate,
    principal: CurrentPrincipal,
    session: WriteSession,
    ctx: Ctx,
    response: Response,
    user_agent: Annotated[str | None, Header()] = None,
) -> PushSubscriptionRead:
    """Register this browser for push (201; 200 when it was registered already)."""
    read, created = await service.subscribe(session, ctx, principal, payload, user_agent=user_agent)
    if not created:
        response.status_code = status.HTTP_200_OK
    return read


@router.delete(
    "/me/push-subscriptions",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 404, 413, 422),
    openapi_extra=_DELETE_BODY,
)
async def unsubscribe(
    request: Request,
    principal: CurrentPrincipal,
    session: WriteSession,
    endpoint: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
) -> Response:
    """Remove a browser: ``{"endpoint"}`` in the body or ``?endpoint=``."""
    if endpoint is None:
        body = await request.body()
        if not body:
            raise Unprocessable("give the endpoint in the body or as ?endpoint=", loc=["body"])
        try:
            endpoint = PushSubscriptionDelete.model_validate_json(body).endpoint
        except ValueError as exc:
            raise Unprocessable(
                f'the body must be {{"endpoint": ...}}: {exc}', loc=["body"]
            ) from None
    if "\x00" in endpoint:
        raise Unprocessable("the endpoint contains NUL characters", loc=["query", "endpoint"])
    await service.unsubscribe(session, principal, endpoint)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
