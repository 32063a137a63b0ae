"""The per-user live event log and its sequence counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import fetch_rows, insert_rows, is_postgresql
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
    their unread count: one statement on PostgreSQL, one per 250 users on SQLite, run on
    the driver (for a one-recipient send SQLAlchemy's execution cost more than it).

    The counter's row lock, held until commit, keeps each user's events committed in seq
    order (and makes a recount that follows it see every committed item).
    """
    added = unread_added or {}
    users = sorted(wanted)  # the same lock order in every transaction: no deadlocks
    found: dict[str, Reserved] = {}
    if is_postgresql(session):
        batches = [users]  # one statement: the rows travel as three arrays
    else:
        batches = [users[i : i + _SQLITE_ROWS] for i in range(0, len(users), _SQLITE_ROWS)]
    for batch in batches:
        statement, parameters = _bump(session, tenant_id, batch, wanted, added)
        for recipient, last, unread in await fetch_rows(session, statement, parameters):
            found[recipient] = Reserved(last - wanted[recipient] + 1, unread)
    return found


# the counter upsert: insert a user's counter or add to it, returning the new values (the
# statements are put together of these fixed parts and parameter marks only)
_BUMP_INTO = "INSERT INTO live_counters (tenant_id, recipient_id, seq, unread)"
_BUMP_CONFLICT = (
    "ON CONFLICT (tenant_id, recipient_id) DO UPDATE SET"
    " seq = live_counters.seq + excluded.seq,"
    " unread = live_counters.unread + excluded.unread"
    " RETURNING recipient_id, seq, unread"
)
_BUMP_POSTGRESQL = " ".join(
    (
        _BUMP_INTO,
        "SELECT %s, r, n, u FROM unnest(%s::text[], %s::bigint[], %s::int[]) AS t(r, n, u)",
        "ORDER BY r",
        _BUMP_CONFLICT,
    )
)
_SQLITE_ROWS = 250  # 1,000 parameters a statement
_BUMP_SQLITE: dict[int, str] = {}


def _bump(
    session: AsyncSession,
    tenant_id: str,
    users: list[str],
    wanted: Mapping[str, int],
    added: Mapping[str, int],
) -> tuple[str, list[Any]]:
    """The upsert of ``users``' counters and its parameters, for the session's database."""
    if is_postgresql(session):
        seqs = [wanted[r] for r in users]
        return _BUMP_POSTGRESQL, [tenant_id, users, seqs, [added.get(r, 0) for r in users]]
    statement = _BUMP_SQLITE.get(len(users))
    if statement is None:
        rows = ", ".join("(?, ?, ?, ?)" for _ in users)
        statement = _BUMP_SQLITE[len(users)] = " ".join(
            (_BUMP_INTO, "VALUES", rows, _BUMP_CONFLICT)
        )
    parameters: list[Any] = []
    for recipient in users:
        parameters += (tenant_id, recipient, wanted[recipient], added.get(recipient, 0))
    return statement, parameters


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
