"""Preferences: a recipient's own, over the tenant's defaults, over built-in defaults."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.context import AppContext
from tidings.errors import NotFound, Unprocessable
from tidings.preference import repository, rules
from tidings.preference.schemas import PreferencesRead, PreferencesUpdate
from tidings.recipient import repository as recipient_repository
from tidings.tenant import repository as tenant_repository
from tidings.tenant.service import ensure_tenant


async def tenant_defaults(session: AsyncSession, tenant_id: str) -> rules.Preferences:
    return defaults_of(await tenant_repository.settings_of(session, tenant_id))


def defaults_of(tenant_settings: dict[str, Any]) -> rules.Preferences:
    """The preference defaults held in a tenant's settings."""
    return rules.normalize(tenant_settings.get("preference_defaults"))


async def read(
    session: AsyncSession, tenant_id: str, recipient_id: str, *, must_exist: bool = False
) -> PreferencesRead:
    """The effective preferences, each leaf with where it comes from."""
    if must_exist and not await recipient_repository.get(session, tenant_id, recipient_id):
        raise NotFound(f"recipient {recipient_id!r} does not exist")
    mine = await repository.document(session, tenant_id, recipient_id)
    return rules.read_preferences(mine, await tenant_defaults(session, tenant_id))


async def update(
    session: AsyncSession,
    ctx: AppContext,
    tenant_id: str,
    recipient_id: str,
    payload: PreferencesUpdate,
) -> PreferencesRead:
    """Merge a PUT: omitted keys keep their value, ``null`` removes the recipient's own."""
    now = ctx.clock.now()
    await ensure_tenant(session, ctx, tenant_id)
    await recipient_repository.create_empty(session, tenant_id, [recipient_id], now)
    current = await repository.document(session, tenant_id, recipient_id, for_update=True)
    try:
        merged = rules.merge_update(current, payload)
    except rules.PreferencesTooLarge as exc:
        raise Unprocessable(str(exc), loc=["body", exc.field]) from None
    await repository.store(session, tenant_id, recipient_id, merged, now)
    return rules.read_preferences(merged, await tenant_defaults(session, tenant_id))
