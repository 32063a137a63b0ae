"""The per-user live event log and its sequence counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import dialect_insert, insert_rows, is_postgresql
from tidings.models import LiveCounter, LiveEvent


async def append(
    session: AsyncSession,
    tenant_id: str,
    events: Sequence[tuple[str, str, dict[str, Any]]],
    now: datetime,
) -> list[tuple[str, dict[str, Any]]]:
    """Log ``(recipient, type, data)`` events; returns ``(recipient, frame)`` with their seqs."""
    if not events:
        return []
    reserved = await reserve(session, tenant_id, Counter(r for r, _type, _data in events))
    return await record(session, tenant_id, events, reserved, now)


@dataclass(frozen=True)
class Reserved:
    """A user's counter after a reservation: the first seq reserved, the unread count."""

    first_seq: int
    unread: int


async def reserve(
    session: AsyncSession,
    tenant_id: str,
    wanted: Mapping[str, int],
    *,
    unread_added: Mapping[str, int] | None = None,
) -> dict[str, Reserved]:
    """Take ``wanted[user]`` seqs of each user's counter, adding ``unread_added[user]`` to
    their unread count, in one statement.

    The counter's row lock, held until commit, keeps each user's events committed in seq
    order (and makes a recount that follows it see every committed item).
    """
    added = unread_added or {}
    rows = [
        {"tenant_id": tenant_id, "recipient_id": r, "seq": n, "unread": added.get(r, 0)}
        for r, n in wanted.items()
    ]
    result = await session.execute(_bump_statement(session), rows)
    return {
        recipient: Reserved(last - wanted[recipient] + 1, unread)
        for recipient, last, unread in result.all()
    }


async def set_unread(session: AsyncSession, tenant_id: str, counts: Mapping[str, int]) -> None:
    """Store exact unread counts (of users whose counters exist)."""
    if counts:
        await session.execute(
            _SET_UNREAD,
            [{"t": tenant_id, "r": recipient, "n": n} for recipient, n in counts.items()],
        )


async def lock_counters(session: AsyncSession, tenant_id: str, recipients: Sequence[str]) -> None:
    """Wait for the counters of ``recipients`` (PostgreSQL; SQLite has one writer anyway)."""
    if recipients and is_postgresql(session):
        for start in range(0, len(recipients), 500):
            await session.execute(
                select(_COUNTERS.c.seq)
                .where(
                    _COUNTERS.c.tenant_id == tenant_id,
                    _COUNTERS.c.recipient_id.in_(recipients[start : start + 500]),
                )
                .with_for_update()
            )


async def record(
    session: AsyncSession,
    tenant_id: str,
    events: Sequence[tuple[str, str, dict[str, Any]]],
    reserved: Mapping[str, Reserved],
    now: datetime,
) -> list[tuple[str, dict[str, Any]]]:
    """Insert ``events`` with the seqs ``reserve`` took for them, in order; returns frames."""
    next_seq = {recipient: r.first_seq for recipient, r in reserved.items()}
    frames: list[tuple[str, dict[str, Any]]] = []
    records: list[dict[str, Any]] = []
    for recipient, kind, data in events:
        seq = next_seq[recipient]
        next_seq[recipient] = seq + 1
        records.append(
            {
                "tenant_id": tenant_id,
                "recipient_id": recipient,
                "seq": seq,
                "type": kind,
                "data": data,
                "created_at": now,
            }
        )
        frames.append((recipient, {"type": kind, "seq": seq, "data": data}))
    await insert_rows(session, _EVENTS, records)
    return frames


_EVENTS = cast(Table, LiveEvent.__table__)
_COUNTERS = cast(Table, LiveCounter.__table__)
_SET_UNREAD = (
    update(_COUNTERS)
    .where(
        _COUNTERS.c.tenant_id == bindparam("t"),
        _COUNTERS.c.recipient_id == bindparam("r"),
    )
    .values(unread=bindparam("n"))
)
_BUMP: dict[str, Any] = {}


def _bump_statement(session: AsyncSession) -> Any:
    """The counter upsert, built once per dialect (building it costs more than running it)."""
    dialect = session.get_bind().dialect.name
    if dialect not in _BUMP:
        stmt = dialect_insert(session, _COUNTERS)
        _BUMP[dialect] = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "recipient_id"],
            set_={
                "seq": _COUNTERS.c.seq + stmt.excluded.seq,
                "unread": _COUNTERS.c.unread + stmt.excluded.unread,
            },
        ).returning(_COUNTERS.c.recipient_id, _COUNTERS.c.seq, _COUNTERS.c.unread)
    return _BUMP[dialect]


async def current_seq(session: AsyncSession, tenant_id: str, recipient_id: str) -> int:
    value = await session.scalar(
        select(LiveCounter.seq).where(
            LiveCounter.tenant_id == tenant_id, LiveCounter.recipient_id == recipient_id
        )
    )
    return int(value or 0)


async def oldest_seq(session: AsyncSession, tenant_id: str, recipient_id: str) -> int | None:
    value = await session.scalar(
        select(func.min(LiveEvent.seq)).where(
            LiveEvent.tenant_id == tenant_id, LiveEvent.recipient_id == recipient_id
        )
    )
    return None if value is None else int(value)


async def after(
    session: AsyncSession, tenant_id: str, recipient_id: str, since: int, *, limit: int
) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(LiveEvent.seq, LiveEvent.type, LiveEvent.data)
        .where(
            LiveEvent.tenant_id == tenant_id,
            LiveEvent.recipient_id == recipient_id,
            LiveEvent.seq > since,
        )
        .order_by(LiveEvent.seq)
        .limit(limit)
    )
    return [{"type": kind, "seq": seq, "data": data} for seq, kind, data in rows]
