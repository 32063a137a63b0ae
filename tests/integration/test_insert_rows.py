"""kit.sql.insert_rows: rows handed to the driver are the rows an INSERT would store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import Table, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import async_sessionmaker

from tidings.db import Database
from tidings.kit import sql
from tidings.models import Tenant

TENANTS = cast(Table, Tenant.__table__)
NOON = datetime(2026, 5, 4, 12, 0, 0, 250000, tzinfo=UTC)


def _tenant(tenant_id: str, settings: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    return {
        "id": tenant_id,
        "settings": settings,
        "templates_seeded_at": None,
        "created_at": created_at,
    }


async def _stored(db: Database) -> dict[str, tuple[dict[str, Any], datetime | None]]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(select(Tenant.id, Tenant.settings, Tenant.created_at))
        return {tenant_id: (settings, created) for tenant_id, settings, created in rows}


async def test_each_transaction_of_a_session_writes_through_its_own_connection(
    database_url: str,
) -> None:
    db = Database(database_url)
    sessions = async_sessionmaker(db.write_engine, expire_on_commit=False)
    try:
        async with sessions() as session:
            await sql.insert_rows(session, TENANTS, [_tenant("t1", {}, NOON)])
            await session.commit()
            await sql.insert_rows(session, TENANTS, [_tenant("t2", {}, NOON)])
            await session.rollback()
            await sql.insert_rows(session, TENANTS, [_tenant("t3", {}, NOON)])
            await session.commit()
        assert set(await _stored(db)) == {"t1", "t3"}
    finally:
        await db.dispose()


@pytest.mark.parametrize("copy_from", [1, 10**9], ids=["copy", "insert"])
async def test_a_batch_stores_each_rows_own_values(
    database_url: str, monkeypatch: pytest.MonkeyPatch, copy_from: int
) -> None:
    """A batch remembers the processing of repeated timestamps and JSON documents; every
    row still gets its own values (equal instants in other zones are stored in UTC)."""
    monkeypatch.setattr(sql, "COPY_FROM_ROWS", copy_from)
    shared = {"brand": {"name": "Acmé \u2603", "tags": [1, None, "x\\ty"]}}
    paris = timezone(timedelta(hours=2))
    rows = []
    for i in range(300):
        settings = shared if i % 2 else {"n": i}
        created = NOON if i % 3 else NOON.astimezone(paris)
        if i % 5 == 0:
            created = NOON + timedelta(seconds=i)
        rows.append(_tenant(f"t{i:03d}", settings, created))
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            await sql.insert_rows(session, TENANTS, rows)
        stored = await _stored(db)
    finally:
        await db.dispose()
    assert len(stored) == 300
    for row in rows:
        settings, created = stored[row["id"]]
        assert settings == row["settings"]
        assert created == row["created_at"]
        assert created is not None and created.utcoffset() == timedelta(0)


async def test_driver_errors_surface_as_sqlalchemy_errors(database_url: str) -> None:
    """The API answers SQLAlchemy's IntegrityError with a 409 and its connection errors with
    a 503: rows written through the driver raise the same classes."""
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            await sql.insert_rows(session, TENANTS, [_tenant("t1", {}, NOON)])
        with pytest.raises(sa_exc.IntegrityError):
            async with db.transaction() as session:
                await sql.insert_rows(session, TENANTS, [_tenant("t1", {}, NOON)])
        with pytest.raises(
            sa_exc.ProgrammingError if "postgresql" in database_url else sa_exc.OperationalError
        ):
            async with db.transaction() as session:
                await sql.fetch_rows(session, "SELECT no_such_column FROM tenants", [])
        assert set(await _stored(db)) == {"t1"}
    finally:
        await db.dispose()
