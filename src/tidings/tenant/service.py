"""Tenant lifecycle and settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.errors import Unprocessable
from tidings.kit.jobs import after_commit
from tidings.preference import rules
from tidings.tenant import repository
from tidings.tenant.schemas import TenantSettingsRead, TenantSettingsUpdate


async def ensure_tenant(session: AsyncSession, ctx: AppContext, tenant_id: str) -> None:
    """Create the tenant row on first use (cached per process once committed)."""
    if tenant_id in ctx.known_tenants:
        return
    await repository.ensure(session, tenant_id, ctx.clock.now())
    after_commit(session, lambda: ctx.known_tenants.add(tenant_id))


async def read_settings(session: AsyncSession, principal: Principal) -> TenantSettingsRead:
    return _read(await repository.settings_of(session, principal.tenant))


def _read(settings: dict[str, Any]) -> TenantSettingsRead:
    return TenantSettingsRead.model_validate(
        {**settings, "preference_defaults": rules.normalize(settings.get("preference_defaults"))}
    )


async def update_settings(
    session: AsyncSession, ctx: AppContext, principal: Principal, payload: TenantSettingsUpdate
) -> TenantSettingsRead:
    for channel, names in (payload.providers or {}).items():
        known = ctx.providers.names(channel)
        for index, name in enumerate(names):
            if name not in known:
                raise Unprocessable(
                    f"no provider {name!r} is configured for {channel} "
                    f"(configured: {', '.join(known) or 'none'})",
                    loc=["body", "providers", channel, index],
                )
        if len(set(names)) != len(names):
            raise Unprocessable(
                f"a provider is listed twice for {channel}", loc=["body", "providers", channel]
            )
    await ensure_tenant(session, ctx, principal.tenant)
    current = await repository.settings_of(session, principal.tenant, for_update=True)
    for key, value in payload.model_dump(exclude_unset=True).items():
        if value is None:
            current.pop(key, None)
        elif key == "preference_defaults":
            assert payload.preference_defaults is not None
            try:
                current[key] = rules.merge_update(current.get(key), payload.preference_defaults)
            except rules.PreferencesTooLarge as exc:
                raise Unprocessable(
                    str(exc), loc=["body", "preference_defaults", exc.field]
                ) from None
        else:
            current[key] = value
    await repository.store_settings(session, principal.tenant, current)
    return _read(current)


@dataclass(frozen=True)
class DeliverySettings:
    """What the delivery engine needs of a tenant's settings."""

    email_from: str | None = None  # None: the service default
    email_reply_to: str | None = None
    providers: dict[str, list[str]] = field(default_factory=dict)  # channel -> names


async def delivery_settings(session: AsyncSession, tenant_id: str) -> DeliverySettings:
    settings = await repository.settings_of(session, tenant_id)
    return DeliverySettings(
        email_from=settings.get("email_from"),
        email_reply_to=settings.get("email_reply_to"),
        providers=dict(settings.get("providers") or {}),
    )
