"""Tenant rows: created on first use, holding per-tenant settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import dialect_insert
from tidings.models import Tenant


async def ensure(session: AsyncSession, tenant_id: str, now: datetime) -> None:
    stmt = dialect_insert(session, Tenant).values(
        id=tenant_id, settings={}, created_at=now, templates_seeded_at=None
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


async def get(session: AsyncSession, tenant_id: str) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def settings_of(
    session: AsyncSession, tenant_id: str, *, for_update: bool = False
) -> dict[str, Any]:
    """The tenant's settings; ``for_update`` locks the row for a read-modify-write."""
    query = select(Tenant.settings).where(Tenant.id == tenant_id)
    if for_update:
        query = query.with_for_update()
    value = await session.scalar(query)
    return dict(value or {})


async def store_settings(session: AsyncSession, tenant_id: str, settings: dict[str, Any]) -> None:
    await session.execute(update(Tenant).where(Tenant.id == tenant_id).values(settings=settings))


async def claim_template_seeding(session: AsyncSession, tenant_id: str, now: datetime) -> bool:
    """Mark the tenant's templates as seeded; True only for the one caller that flipped it."""
    result = await session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id, Tenant.templates_seeded_at.is_(None))
        .values(templates_seeded_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def templates_seeded(session: AsyncSession, tenant_id: str) -> bool:
    value = await session.scalar(select(Tenant.templates_seeded_at).where(Tenant.id == tenant_id))
    return value is not None
