"""The per-user live event log and its sequence counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import copies, copy_rows, dialect_insert
from tidings.models import LiveCounter, LiveEvent


async def append(
    session: AsyncSession,
    tenant_id: str,
    events: Sequence[tuple[str, str, dict[str, Any]]],
    now: datetime,
) -> list[tuple[str, dict[str, Any]]]:
    """Log ``(recipient, type, data)`` events; returns ``(recipient, frame)`` with their seqs.

    One statement bumps every user's counter by their number of events; the counter's
    row lock, held until commit, keeps each user's events committed in seq order.
    """
    if not events:
        return []
    wanted = Counter(recipient for recipient, _type, _data in events)
    stmt = _bump_statement(session)
    rows = [{"tenant_id": tenant_id, "recipient_id": r, "seq": n} for r, n in wanted.items()]
    result = await session.execute(stmt, rows)
    next_seq = {recipient: last - wanted[recipient] + 1 for recipient, last in result.all()}
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
    if copies(session, records):
        await copy_rows(session, _EVENTS, records)
    else:
        await session.execute(_EVENTS_INSERT, records)
    return frames


_EVENTS = cast(Table, LiveEvent.__table__)
_COUNTERS = cast(Table, LiveCounter.__table__)
_EVENTS_INSERT = insert(_EVENTS)
_BUMP: dict[str, Any] = {}


def _bump_statement(session: AsyncSession) -> Any:
    """The counter upsert, built once per dialect (building it costs more than running it)."""
    dialect = session.get_bind().dialect.name
    if dialect not in _BUMP:
        stmt = dialect_insert(session, _COUNTERS)
        _BUMP[dialect] = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "recipient_id"],
            set_={"seq": _COUNTERS.c.seq + stmt.excluded.seq},
        ).returning(_COUNTERS.c.recipient_id, _COUNTERS.c.seq)
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
