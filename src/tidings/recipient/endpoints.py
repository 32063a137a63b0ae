from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from tidings.auth.deps import ServicePrincipal
from tidings.deps import Ctx, ReadSession, WriteSession
from tidings.kit.paging import DEFAULT_LIMIT, MAX_LIMIT
from tidings.kit.types import RECIPIENT_ID_PATTERN
from tidings.ops.responses import errors
from tidings.recipient import service
from tidings.recipient.schemas import (
    RecipientExport,
    RecipientPage,
    RecipientRead,
    RecipientUpsert,
)

router = APIRouter(prefix="/recipients", tags=["recipients"])

RecipientIdPath = Annotated[str, Path(pattern=RECIPIENT_ID_PATTERN, max_length=128)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=2048)]


@router.put(
    "/{recipient_id}",
    response_model=RecipientRead,
    responses={
        201: {"model": RecipientRead, "description": "Created"},
        **errors(401, 403, 413, 422),
    },
)
async def upsert_recipient(
    recipient_id: RecipientIdPath,
    payload: RecipientUpsert,
    principal: ServicePrincipal,
    session: WriteSession,
    ctx: Ctx,
    response: Response,
) -> RecipientRead:
    """Create or update a recipient (omitted fields keep their value, null clears)."""
    recipient, created = await service.upsert(session, ctx, principal, recipient_id, payload)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return recipient


@router.get("", response_model=RecipientPage, responses=errors(400, 401, 403, 422))
async def list_recipients(
    principal: ServicePrincipal,
    session: ReadSession,
    ctx: Ctx,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> RecipientPage:
    """List recipients, newest first."""
    return await service.list_page(session, ctx, principal, limit=limit, cursor=cursor)


@router.get("/{recipient_id}", response_model=RecipientRead, responses=errors(401, 403, 404, 422))
async def get_recipient(
    recipient_id: RecipientIdPath, principal: ServicePrincipal, session: ReadSession
) -> RecipientRead:
    """Read one recipient."""
    return await service.get(session, principal, recipient_id)


@router.delete(
    "/{recipient_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 422),
)
async def erase_recipient(
    recipient_id: RecipientIdPath, principal: ServicePrincipal, session: WriteSession
) -> Response:
    """Erase a recipient: personal data, inbox and deliveries."""
    await service.erase(session, principal, recipient_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{recipient_id}/export", response_model=RecipientExport, responses=errors(401, 403, 404, 422)
)
async def export_recipient(
    recipient_id: RecipientIdPath, principal: ServicePrincipal, session: ReadSession
) -> RecipientExport:
    """Everything stored about a recipient (for data-subject access requests)."""
    return await service.export(session, principal, recipient_id)
