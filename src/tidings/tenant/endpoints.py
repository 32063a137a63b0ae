from __future__ import annotations

from fastapi import APIRouter

from tidings.auth.deps import AdminPrincipal
from tidings.deps import Ctx, ReadSession, WriteSession
from tidings.ops.responses import errors
from tidings.tenant import service
from tidings.tenant.schemas import TenantSettingsRead, TenantSettingsUpdate

router = APIRouter(prefix="/tenant", tags=["tenant"])


@router.get("/settings", response_model=TenantSettingsRead, responses=errors(401, 403))
async def get_settings(principal: AdminPrincipal, session: ReadSession) -> TenantSettingsRead:
    """Read the tenant's settings."""
    return await service.read_settings(session, principal)


@router.put("/settings", response_model=TenantSettingsRead, responses=errors(401, 403, 413, 422))
async def put_settings(
    payload: TenantSettingsUpdate, principal: AdminPrincipal, session: WriteSession, ctx: Ctx
) -> TenantSettingsRead:
    """Change the tenant's settings (omitted keys keep their value, null removes it)."""
    return await service.update_settings(session, ctx, principal, payload)
