from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from tidings.auth.deps import AdminPrincipal
from tidings.delivery import service
from tidings.delivery.repository import DeliveryFilter
from tidings.delivery.schemas import DeliveryPage, DeliveryRead, DeliveryStatus
from tidings.deps import Ctx, ReadSession, WriteSession
from tidings.kit.paging import DEFAULT_LIMIT, MAX_LIMIT
from tidings.kit.types import RECIPIENT_ID_PATTERN, UUID_PATTERN
from tidings.ops.responses import errors
from tidings.template.schemas import Channel

router = APIRouter(prefix="/deliveries", tags=["deliveries"])


@router.get("", response_model=DeliveryPage, responses=errors(400, 401, 403, 422))
async def list_deliveries(
    principal: AdminPrincipal,
    session: ReadSession,
    ctx: Ctx,
    status: DeliveryStatus | None = None,
    channel: Channel | None = None,
    recipient_id: Annotated[str | None, Query(pattern=RECIPIENT_ID_PATTERN)] = None,
    send_id: Annotated[str | None, Query(pattern=UUID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> DeliveryPage:
    """The delivery log, newest first."""
    f = DeliveryFilter(status=status, channel=channel, recipient_id=recipient_id, send_id=send_id)
    return await service.list_page(session, ctx, principal, f, limit=limit, cursor=cursor)


@router.post(
    "/{delivery_id}/retry", response_model=DeliveryRead, responses=errors(401, 403, 404, 409, 422)
)
async def retry_delivery(
    delivery_id: Annotated[str, Path(pattern=UUID_PATTERN)],
    principal: AdminPrincipal,
    session: WriteSession,
    ctx: Ctx,
) -> DeliveryRead:
    """Retry a dead or failed delivery with a fresh set of attempts."""
    return await service.retry(session, ctx, principal, delivery_id)
