"""Template rows; every query is scoped by tenant."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import dialect_insert, newest_first
from tidings.models import Template


async def get(session: AsyncSession, tenant_id: str, key: str) -> Template | None:
    return await session.get(Template, (tenant_id, key))


async def insert_new(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Insert one template unless its key exists; True when this call created it."""
    stmt = (
        dialect_insert(session, Template)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
        .returning(Template.key)
    )
    return (await session.execute(stmt)).first() is not None


async def insert_many(
    session: AsyncSession, rows: Iterable[dict[str, Any]], *, replace: bool = False
) -> None:
    rows = list(rows)
    if not rows:
        return
    stmt = dialect_insert(session, Template)
    if replace:
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "key"],
            set_={
                name: stmt.excluded[name]
                for name in (
                    "name",
                    "category",
                    "priority",
                    "default_channels",
                    "content",
                    "locales",
                    "updated_at",
                )
            },
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["tenant_id", "key"])
    await session.execute(stmt, rows)


async def list_page(
    session: AsyncSession, tenant_id: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[Template]:
    query = select(Template).where(Template.tenant_id == tenant_id)
    query = newest_first(query, Template.created_at, Template.key, after=after, limit=limit)
    return list(await session.scalars(query))


async def list_all(session: AsyncSession, tenant_id: str) -> list[Template]:
    return list(
        await session.scalars(
            select(Template).where(Template.tenant_id == tenant_id).order_by(Template.key)
        )
    )


async def delete_one(session: AsyncSession, tenant_id: str, key: str) -> bool:
    result = await session.execute(
        delete(Template).where(Template.tenant_id == tenant_id, Template.key == key)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
