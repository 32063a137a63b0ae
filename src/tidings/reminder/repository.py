"""Interview reminders of a tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import newest_first
from tidings.models import Recipient, Reminder


async def add(session: AsyncSession, values: dict[str, Any]) -> Reminder:
    reminder = Reminder(**values)
    session.add(reminder)
    await session.flush()
    return reminder


async def get(
    session: AsyncSession,
    tenant_id: str,
    reminder_id: str,
    *,
    participant: str | None = None,
    for_update: bool = False,
) -> Reminder | None:
    """One reminder; with ``participant``, only if they take part in it."""
    query = select(Reminder).where(Reminder.tenant_id == tenant_id, Reminder.id == reminder_id)
    if participant is not None:
        query = query.where(
            or_(Reminder.candidate_id == participant, Reminder.employer_id == participant)
        )
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def page(
    session: AsyncSession,
    tenant_id: str,
    *,
    participant: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Reminder]:
    query = select(Reminder).where(Reminder.tenant_id == tenant_id)
    if participant is not None:
        query = query.where(
            or_(Reminder.candidate_id == participant, Reminder.employer_id == participant)
        )
    query = newest_first(query, Reminder.created_at, Reminder.id, after=after, limit=limit)
    return list(await session.scalars(query))


async def contacts(
    session: AsyncSession, tenant_id: str, ids: list[str]
) -> dict[str, tuple[str | None, str | None]]:
    """(name, e-mail) of the recipients that exist."""
    rows = await session.execute(
        select(Recipient.id, Recipient.name, Recipient.email).where(
            Recipient.tenant_id == tenant_id, Recipient.id.in_(ids)
        )
    )
    return {rid: (name, email) for rid, name, email in rows}
