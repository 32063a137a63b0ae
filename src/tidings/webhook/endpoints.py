from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from tidings.auth.deps import AdminPrincipal
from tidings.deps import Ctx, ReadSession, WriteSession
from tidings.kit.paging import DEFAULT_LIMIT, MAX_LIMIT
from tidings.kit.types import UUID_PATTERN
from tidings.ops.responses import errors
from tidings.webhook import service
from tidings.webhook.schemas import (
    RotatedSecret,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointPage,
    WebhookEndpointRead,
)

router = APIRouter(prefix="/webhook-endpoints", tags=["webhooks"])

IdPath = Annotated[str, Path(pattern=UUID_PATTERN)]


@router.get("", response_model=WebhookEndpointPage, responses=errors(400, 401, 403, 422))
async def list_endpoints(
    principal: AdminPrincipal,
    session: ReadSession,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> WebhookEndpointPage:
    """The tenant's webhook endpoints, newest first (secrets are never shown)."""
    return await service.list_page(session, ctx, principal, limit=limit, cursor=cursor)


@router.post(
    "",
    response_model=WebhookEndpointCreated,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 409, 413, 422),
)
async def create_endpoint(
    payload: WebhookEndpointCreate, principal: AdminPrincipal, session: WriteSession, ctx: Ctx
) -> WebhookEndpointCreated:
    """Register an endpoint; the answer carries its signing secret, this once."""
    return await service.create(session, ctx, principal, payload)


@router.get(
    "/{endpoint_id}", response_model=WebhookEndpointRead, responses=errors(401, 403, 404, 422)
)
async def get_endpoint(
    endpoint_id: IdPath, principal: AdminPrincipal, session: ReadSession
) -> WebhookEndpointRead:
    """One endpoint (without its secret)."""
    return await service.get(session, principal, endpoint_id)


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 422),
)
async def delete_endpoint(
    endpoint_id: IdPath, principal: AdminPrincipal, session: WriteSession, ctx: Ctx
) -> Response:
    """Remove an endpoint; events it has not received yet are cancelled."""
    await service.remove(session, ctx, principal, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=RotatedSecret,
    responses=errors(401, 403, 404, 422),
)
async def rotate_secret(
    endpoint_id: IdPath, principal: AdminPrincipal, session: WriteSession, ctx: Ctx
) -> RotatedSecret:
    """Issue a new signing secret (shown once); the old one stays valid for 24 hours."""
    return await service.rotate(session, ctx, principal, endpoint_id)
