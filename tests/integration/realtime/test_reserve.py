"""Counter reservations for many users at once (a fan-out's live events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, select

from tidings.db import Database
from tidings.kit.sql import insert_rows
from tidings.models import LiveCounter, Recipient, Tenant
from tidings.realtime.repository import Reserved, reserve

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


async def test_reserving_for_hundreds_of_users_takes_each_their_own_seqs(
    database_url: str,
) -> None:
    """More users than one SQLite statement takes (250); some with counters already."""
    users = [f"u{i:04d}" for i in range(600)]
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            await insert_rows(
                session,
                cast(Table, Tenant.__table__),
                [{"id": "acme", "settings": {}, "templates_seeded_at": None, "created_at": NOW}],
            )
            await insert_rows(
                session,
                cast(Table, Recipient.__table__),
                [
                    {"tenant_id": "acme", "id": u, "data": {}, "created_at": NOW, "updated_at": NOW}
                    for u in users
                ],
            )
        async with db.transaction() as session:
            first = await reserve(session, "acme", dict.fromkeys(users[::2], 2))
        wanted = {u: 1 + i % 3 for i, u in enumerate(reversed(users))}
        added = {u: i % 2 for i, u in enumerate(users)}
        async with db.transaction() as session:
            second = await reserve(session, "acme", wanted, unread_added=added)
        async with db.transaction(write=False) as session:
            stored = {
                r: (seq, unread)
                for r, seq, unread in await session.execute(
                    select(LiveCounter.recipient_id, LiveCounter.seq, LiveCounter.unread)
                )
            }
    finally:
        await db.dispose()
    assert first == {u: Reserved(first_seq=1, unread=0) for u in users[::2]}
    for user in users:
        before = 2 if user in first else 0
        assert second[user] == Reserved(first_seq=before + 1, unread=added[user])
        assert stored[user] == (before + wanted[user], added[user])
