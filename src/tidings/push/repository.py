"""Browser push subscriptions, and the service keys stored once for every process."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import dialect_insert, newest_first
from tidings.models import PushSubscription, ServiceKey


async def upsert(session: AsyncSession, values: dict[str, object]) -> tuple[PushSubscription, bool]:
    """Insert, or move an existing endpoint to this user with fresh keys; (row, created)."""
    stmt = dialect_insert(session, PushSubscription).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "endpoint"],
        set_={
            "recipient_id": stmt.excluded.recipient_id,
            "p256dh": stmt.excluded.p256dh,
            "auth": stmt.excluded.auth,
            "user_agent": stmt.excluded.user_agent,
        },
    ).returning(PushSubscription.id)
    row_id = (await session.execute(stmt)).scalar_one()
    row = await session.get(PushSubscription, row_id, populate_existing=True)
    assert row is not None
    return row, row_id == values["id"]


async def page(
    session: AsyncSession,
    tenant_id: str,
    recipient_id: str,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[PushSubscription]:
    query = select(PushSubscription).where(
        PushSubscription.tenant_id == tenant_id, PushSubscription.recipient_id == recipient_id
    )
    query = newest_first(
        query, PushSubscription.created_at, PushSubscription.id, after=after, limit=limit
    )
    return list(await session.scalars(query))


async def ids_beyond(
    session: AsyncSession, tenant_id: str, recipient_id: str, keep: int
) -> list[str]:
    """Subscriptions of the user past the newest ``keep``."""
    rows = await session.scalars(
        select(PushSubscription.id)
        .where(
            PushSubscription.tenant_id == tenant_id,
            PushSubscription.recipient_id == recipient_id,
        )
        .order_by(PushSubscription.created_at.desc(), PushSubscription.id.desc())
        .offset(keep)
    )
    return list(rows)


async def delete_ids(session: AsyncSession, tenant_id: str, ids: Sequence[str]) -> None:
    if ids:
        await session.execute(
            delete(PushSubscription).where(
                PushSubscription.tenant_id == tenant_id, PushSubscription.id.in_(ids)
            )
        )


async def delete_endpoint(
    session: AsyncSession, tenant_id: str, recipient_id: str, endpoint: str
) -> bool:
    result = await session.execute(
        delete(PushSubscription).where(
            PushSubscription.tenant_id == tenant_id,
            PushSubscription.recipient_id == recipient_id,
            PushSubscription.endpoint == endpoint,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def for_recipients(
    session: AsyncSession, tenant_id: str, recipient_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Subscription ids per recipient (the push targets of a send)."""
    found: dict[str, list[str]] = {}
    if not recipient_ids:
        return found
    rows = await session.execute(
        select(PushSubscription.recipient_id, PushSubscription.id)
        .where(
            PushSubscription.tenant_id == tenant_id,
            PushSubscription.recipient_id.in_(recipient_ids),
        )
        .order_by(PushSubscription.created_at, PushSubscription.id)
    )
    for recipient_id, subscription_id in rows:
        found.setdefault(recipient_id, []).append(subscription_id)
    return found


async def get_many(session: AsyncSession, ids: Sequence[str]) -> dict[str, PushSubscription]:
    if not ids:
        return {}
    rows = await session.scalars(select(PushSubscription).where(PushSubscription.id.in_(ids)))
    return {row.id: row for row in rows}


async def all_for_recipient(
    session: AsyncSession, tenant_id: str, recipient_id: str
) -> list[PushSubscription]:
    rows = await session.scalars(
        select(PushSubscription)
        .where(
            PushSubscription.tenant_id == tenant_id,
            PushSubscription.recipient_id == recipient_id,
        )
        .order_by(PushSubscription.created_at)
    )
    return list(rows)


async def service_key(session: AsyncSession, name: str) -> str | None:
    return await session.scalar(select(ServiceKey.value).where(ServiceKey.name == name))


async def store_service_key(session: AsyncSession, name: str, value: str, now: datetime) -> None:
    """Store ``value`` unless another process stored one first (theirs wins)."""
    stmt = dialect_insert(session, ServiceKey).values(name=name, value=value, created_at=now)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))


async def owner_of(session: AsyncSession, tenant_id: str, endpoint: str) -> tuple[str, str] | None:
    """(subscription id, recipient) of an endpoint already registered in the tenant."""
    row = (
        await session.execute(
            select(PushSubscription.id, PushSubscription.recipient_id).where(
                PushSubscription.tenant_id == tenant_id, PushSubscription.endpoint == endpoint
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])
