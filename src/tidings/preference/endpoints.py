from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tidings.auth.deps import CurrentPrincipal, ServicePrincipal
from tidings.deps import Ctx, ReadSession, WriteSession
from tidings.kit.types import RECIPIENT_ID_PATTERN
from tidings.ops.responses import errors
from tidings.preference import service
from tidings.preference.schemas import PreferencesRead, PreferencesUpdate

router = APIRouter(tags=["preferences"])

RecipientPath = Annotated[str, Path(pattern=RECIPIENT_ID_PATTERN)]


@router.get("/me/preferences", response_model=PreferencesRead, responses=errors(401))
async def get_my_preferences(principal: CurrentPrincipal, session: ReadSession) -> PreferencesRead:
    """Your effective preferences, and where each value comes from."""
    return await service.read(session, principal.tenant, principal.sub)


@router.put("/me/preferences", response_model=PreferencesRead, responses=errors(401, 413, 422))
async def put_my_preferences(
    payload: PreferencesUpdate, principal: CurrentPrincipal, session: WriteSession, ctx: Ctx
) -> PreferencesRead:
    """Change your preferences (omitted keys keep their value, null restores the default)."""
    return await service.update(session, ctx, principal.tenant, principal.sub, payload)


@router.get(
    "/recipients/{recipient_id}/preferences",
    response_model=PreferencesRead,
    responses=errors(401, 403, 404, 422),
)
async def get_preferences(
    recipient_id: RecipientPath, principal: ServicePrincipal, session: ReadSession
) -> PreferencesRead:
    """A recipient's effective preferences, and where each value comes from."""
    return await service.read(session, principal.tenant, recipient_id, must_exist=True)


@router.put(
    "/recipients/{recipient_id}/preferences",
    response_model=PreferencesRead,
    responses=errors(401, 403, 413, 422),
)
async def put_preferences(
    recipient_id: RecipientPath,
    payload: PreferencesUpdate,
    principal: ServicePrincipal,
    session: WriteSession,
    ctx: Ctx,
) -> PreferencesRead:
    """Change a recipient's preferences (created empty if unknown)."""
    return await service.update(session, ctx, principal.tenant, recipient_id, payload)
