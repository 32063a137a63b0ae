"""Recipients' own preference documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import dialect_insert
from tidings.models import PreferenceSet


async def document(
    session: AsyncSession, tenant_id: str, recipient_id: str, *, for_update: bool = False
) -> dict[str, Any]:
    query = select(PreferenceSet.document).where(
        PreferenceSet.tenant_id == tenant_id, PreferenceSet.recipient_id == recipient_id
    )
    if for_update:
        query = query.with_for_update()
    return dict(await session.scalar(query) or {})


async def store(
    session: AsyncSession,
    tenant_id: str,
    recipient_id: str,
    doc: dict[str, Any],
    now: datetime,
) -> None:
    stmt = dialect_insert(session, PreferenceSet).values(
        tenant_id=tenant_id, recipient_id=recipient_id, document=doc, updated_at=now
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "recipient_id"],
            set_={"document": stmt.excluded.document, "updated_at": stmt.excluded.updated_at},
        )
    )
