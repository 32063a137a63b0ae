"""Webhook endpoints of a tenant."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import newest_first
from tidings.models import Delivery, WebhookEndpoint


async def add(session: AsyncSession, values: dict[str, Any]) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(**values)
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get(
    session: AsyncSession, tenant_id: str, endpoint_id: str, *, for_update: bool = False
) -> WebhookEndpoint | None:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id
    )
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def page(
    session: AsyncSession, tenant_id: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id)
    query = newest_first(
        query, WebhookEndpoint.created_at, WebhookEndpoint.id, after=after, limit=limit
    )
    return list(await session.scalars(query))


async def count(session: AsyncSession, tenant_id: str) -> int:
    rows = await session.scalars(
        select(WebhookEndpoint.id).where(WebhookEndpoint.tenant_id == tenant_id)
    )
    return len(list(rows))


async def remove(session: AsyncSession, tenant_id: str, endpoint_id: str) -> bool:
    result = await session.execute(
        delete(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def targets(
    session: AsyncSession, tenant_ids: Iterable[str]
) -> dict[str, list[tuple[str, list[str] | None]]]:
    """(endpoint id, categories) of each tenant's endpoints, oldest first."""
    found: dict[str, list[tuple[str, list[str] | None]]] = {}
    wanted = sorted(set(tenant_ids))
    if not wanted:
        return found
    rows = await session.execute(
        select(WebhookEndpoint.tenant_id, WebhookEndpoint.id, WebhookEndpoint.categories)
        .where(WebhookEndpoint.tenant_id.in_(wanted))
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    for tenant_id, endpoint_id, categories in rows:
        found.setdefault(tenant_id, []).append((endpoint_id, categories))
    return found


async def get_many(session: AsyncSession, ids: Sequence[str]) -> dict[str, WebhookEndpoint]:
    if not ids:
        return {}
    rows = await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))
    return {row.id: row for row in rows}


async def insert_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(Delivery), list(rows))
