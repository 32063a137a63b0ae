from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, status

from tidings.auth.deps import ServicePrincipal
from tidings.deps import Ctx, ReadSession, WriteSession
from tidings.kit.types import UUID_PATTERN
from tidings.ops.responses import errors
from tidings.send import service
from tidings.send.schemas import (
    BulkSendAccepted,
    BulkSendCreate,
    SendAccepted,
    SendCreate,
    SendRead,
)

router = APIRouter(tags=["sends"])

SendIdPath = Annotated[str, Path(pattern=UUID_PATTERN)]
IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",
        description="Replays the first answer for the same body within 24 h",
    ),
]


@router.post(
    "/notifications",
    response_model=SendAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(401, 403, 409, 413, 422),
)
async def create_send(
    payload: SendCreate,
    principal: ServicePrincipal,
    session: WriteSession,
    ctx: Ctx,
    idempotency_key: IdempotencyHeader = None,
) -> SendAccepted:
    """Send a template or literal text to up to 1,000 recipients; 202 once stored."""
    return await service.accept(session, ctx, principal, payload, header_key=idempotency_key)


@router.post(
    "/notifications/bulk",
    response_model=BulkSendAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(401, 403, 409, 413, 422),
)
async def create_bulk_send(
    payload: BulkSendCreate, principal: ServicePrincipal, session: WriteSession, ctx: Ctx
) -> BulkSendAccepted:
    """Up to 1,000 sends at once; validated as a whole, stored all or nothing."""
    return await service.accept_bulk(session, ctx, principal, payload)


@router.get("/sends/{send_id}", response_model=SendRead, responses=errors(401, 403, 404, 422))
async def get_send(
    send_id: SendIdPath, principal: ServicePrincipal, session: ReadSession, ctx: Ctx
) -> SendRead:
    """A send's status and its deliveries counted per channel and status."""
    return await service.read(session, ctx, principal, send_id)


@router.delete("/sends/{send_id}", response_model=SendRead, responses=errors(401, 403, 404, 422))
async def cancel_send(
    send_id: SendIdPath, principal: ServicePrincipal, session: WriteSession, ctx: Ctx
) -> SendRead:
    """Cancel what has not gone out; visible in-app items stay."""
    return await service.cancel(session, ctx, principal, send_id)
