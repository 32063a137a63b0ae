"""Recipient rows; every query is scoped by tenant."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import dialect_insert, newest_first
from tidings.models import Recipient


async def get(
    session: AsyncSession, tenant_id: str, recipient_id: str, *, for_update: bool = False
) -> Recipient | None:
    return await session.get(
        Recipient, (tenant_id, recipient_id), with_for_update=for_update or None
    )


async def create_if_missing(
    session: AsyncSession, tenant_id: str, recipient_id: str, now: datetime
) -> bool:
    """Insert an empty recipient unless it exists; True when this call created it."""
    stmt = (
        dialect_insert(session, Recipient)
        .values(tenant_id=tenant_id, id=recipient_id, data={}, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
        .returning(Recipient.id)
    )
    return (await session.execute(stmt)).first() is not None


async def get_many(
    session: AsyncSession, tenant_id: str, recipient_ids: Iterable[str]
) -> dict[str, Recipient]:
    ids = list(recipient_ids)
    found: dict[str, Recipient] = {}
    for start in range(0, len(ids), 500):
        rows = await session.scalars(
            select(Recipient).where(
                Recipient.tenant_id == tenant_id, Recipient.id.in_(ids[start : start + 500])
            )
        )
        found.update((row.id, row) for row in rows)
    return found


async def create_empty(
    session: AsyncSession, tenant_id: str, recipient_ids: Iterable[str], now: datetime
) -> None:
    """Create recipients that do not exist yet (a concurrent creator wins quietly)."""
    rows = [
        {"tenant_id": tenant_id, "id": rid, "data": {}, "created_at": now, "updated_at": now}
        for rid in recipient_ids
    ]
    if rows:
        stmt = dialect_insert(session, Recipient).on_conflict_do_nothing(
            index_elements=["tenant_id", "id"]
        )
        await session.execute(stmt, rows)


async def list_page(
    session: AsyncSession, tenant_id: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[Recipient]:
    query = select(Recipient).where(Recipient.tenant_id == tenant_id)
    query = newest_first(query, Recipient.created_at, Recipient.id, after=after, limit=limit)
    return list(await session.scalars(query))


async def delete_one(session: AsyncSession, tenant_id: str, recipient_id: str) -> bool:
    result = await session.execute(
        delete(Recipient).where(Recipient.tenant_id == tenant_id, Recipient.id == recipient_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def apply(recipient: Recipient, changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        setattr(recipient, key, {} if key == "data" and value is None else value)
