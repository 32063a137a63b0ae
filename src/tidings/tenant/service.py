"""Tenant lifecycle and settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.kit.jobs import after_commit
from tidings.tenant import repository
from tidings.tenant.schemas import TenantSettingsRead, TenantSettingsUpdate


async def ensure_tenant(session: AsyncSession, ctx: AppContext, tenant_id: str) -> None:
    """Create the tenant row on first use (cached per process once committed)."""
    if tenant_id in ctx.known_tenants:
        return
    await repository.ensure(session, tenant_id, ctx.clock.now())
    after_commit(session, lambda: ctx.known_tenants.add(tenant_id))


async def read_settings(session: AsyncSession, principal: Principal) -> TenantSettingsRead:
    return TenantSettingsRead.model_validate(
        await repository.settings_of(session, principal.tenant)
    )


async def update_settings(
    session: AsyncSession, ctx: AppContext, principal: Principal, payload: TenantSettingsUpdate
) -> TenantSettingsRead:
    await ensure_tenant(session, ctx, principal.tenant)
    current = await repository.settings_of(session, principal.tenant, for_update=True)
    for key, value in payload.model_dump(exclude_unset=True).items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    await repository.store_settings(session, principal.tenant, current)
    return TenantSettingsRead.model_validate(current)


async def email_identity(session: AsyncSession, tenant_id: str) -> tuple[str | None, str | None]:
    """The tenant's From and Reply-To for e-mail (None: the service default)."""
    settings = await repository.settings_of(session, tenant_id)
    return settings.get("email_from"), settings.get("email_reply_to")
