"""The migrations produce exactly the schema the models describe, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import TEST_DATABASE_URL, _admin, need_service
from tidings.db import Database
from tidings.migrate import alembic_config
from tidings.models import Base, LiveCounter, Notification, Recipient, Send, Tenant


async def test_migrated_schema_matches_models(database_url: str) -> None:
    engine = create_async_engine(database_url)

    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == []


@pytest.fixture
async def unmigrated_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of its own."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    name = f"tidings_test_old_{uuid.uuid4().hex[:12]}"
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # any connection problem means "absent"
        need_service("PostgreSQL", f"{TEST_DATABASE_URL}: {exc}")
    try:
        yield f"{TEST_DATABASE_URL.rpartition('/')[0]}/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_unread_counts_are_filled_in_for_existing_inboxes(unmigrated_url: str) -> None:
    db = Database(unmigrated_url)
    config = alembic_config(db.url)

    async def upgrade_to(revision: str) -> None:
        def run(connection: Any) -> None:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

        async with db.write_engine.begin() as conn:
            await conn.run_sync(run)

    past = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        await upgrade_to("0008")
        async with db.transaction() as session:
            session.add(Tenant(id="acme", settings={}, created_at=past))
            await session.flush()
            for user in ("cand", "quiet", "empty"):
                session.add(
                    Recipient(tenant_id="acme", id=user, data={}, created_at=past, updated_at=past)
                )
            await session.flush()
            rows = [
                ("cand", True, None, None),  # unread
                ("cand", True, None, None),  # unread
                ("cand", True, past, None),  # read
                ("cand", True, None, past),  # archived
                ("cand", False, None, None),  # not shown (preferences)
                ("quiet", True, past, None),  # read
            ]
            for n in range(len(rows)):
                session.add(
                    Send(
                        id=f"s{n}",
                        tenant_id="acme",
                        category="general",
                        priority="normal",
                        channels=["in_app"],
                        request={},
                        created_at=past,
                    )
                )
            await session.flush()
            for n, (user, visible, read_at, archived_at) in enumerate(rows):
                session.add(
                    Notification(
                        id=f"n{n}",
                        tenant_id="acme",
                        send_id=f"s{n}",
                        recipient_id=user,
                        category="general",
                        priority="normal",
                        title="t",
                        body="b",
                        data={},
                        content={},
                        visible=visible,
                        created_at=past,
                        read_at=read_at,
                        archived_at=archived_at,
                    )
                )
            await session.execute(
                text(
                    "INSERT INTO live_counters (tenant_id, recipient_id, seq) "
                    "VALUES ('acme', 'quiet', 7)"
                )
            )

        await upgrade_to("head")

        async with db.transaction(write=False) as session:
            counters = {
                row.recipient_id: (row.seq, row.unread)
                for row in await session.execute(
                    select(LiveCounter.recipient_id, LiveCounter.seq, LiveCounter.unread)
                )
            }
    finally:
        await db.dispose()
    assert counters == {"cand": (0, 2), "quiet": (7, 0)}
