"""Retention: old notifications (with their deliveries), live events, idempotency keys
and provider reports that never found their delivery are purged; recent ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from tests.conftest import Tokens, make_settings, running
from tests.integration.helpers import eventually, send
from tidings.delivery.runner import EmbeddedRunner
from tidings.kit.clock import FrozenClock
from tidings.models import Delivery, IdempotencyKey, LiveEvent, Notification, ProviderReport
from tidings.ops import retention
from tidings.ops.retention import purge_expired


async def test_purge_keeps_what_is_recent(tmp_path: Path, database_url: str) -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    settings = make_settings(tmp_path, database_url, retention_days=30)
    tokens = Tokens(settings)
    async with running(settings, clock=clock, run_deliveries=False) as svc:
        old = await send(
            svc.client, tokens, recipients=["a"], title="Old", body="b", idempotency_key="k-old"
        )
        async with svc.ctx.db.transaction() as session:
            session.add(
                ProviderReport(
                    provider_message_id="SM-old", state="delivered", received_at=clock.now()
                )
            )
        clock.advance(timedelta(days=31))
        await send(svc.client, tokens, recipients=["a"], title="New", body="b")

        removed = await purge_expired(svc.ctx)

        assert removed == {
            "notifications": 1,
            "live_events": 2,  # notification.created and unread_count of the old send
            "idempotency_keys": 1,
            "provider_reports": 1,
        }
        async with svc.ctx.db.transaction(write=False) as session:
            titles = list(await session.scalars(select(Notification.title)))
            assert titles == ["New"]
            left = await session.scalar(select(func.count()).where(Delivery.send_id == old["id"]))
            assert left == 0  # deliveries go with their notification
            assert await session.scalar(select(func.count()).select_from(LiveEvent)) == 2
            assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
            assert await session.scalar(select(func.count()).select_from(ProviderReport)) == 0


async def test_the_embedded_runner_purges_on_its_calendar(
    tmp_path: Path, database_url: str
) -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    settings = make_settings(tmp_path, database_url, retention_days=30)
    tokens = Tokens(settings)
    async with running(settings, clock=clock, run_deliveries=False) as svc:
        await send(svc.client, tokens, recipients=["a"], title="Old", body="b")
        clock.advance(timedelta(days=31))
        runner = EmbeddedRunner(svc.ctx, calendar_interval=0.01)
        await runner.start()
        try:

            async def purged() -> bool:
                async with svc.ctx.db.transaction(write=False) as session:
                    count = await session.scalar(select(func.count()).select_from(Notification))
                return count == 0

            await eventually(purged)
        finally:
            await runner.stop()


async def test_purge_goes_batch_by_batch_until_nothing_is_left(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 2)
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    settings = make_settings(tmp_path, database_url, retention_days=30)
    tokens = Tokens(settings)
    async with running(settings, clock=clock, run_deliveries=False) as svc:
        await send(svc.client, tokens, recipients=["a", "b", "c", "d", "e"], title="Old", body="b")
        clock.advance(timedelta(days=31))
        await send(svc.client, tokens, recipients=["a"], title="New", body="b")
        statements: list[str] = []
        engine = svc.ctx.db.engine.sync_engine

        def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.lstrip().upper().startswith("DELETE FROM NOTIFICATIONS"):
                statements.append(statement)

        event.listen(engine, "before_cursor_execute", seen)
        try:
            removed = await purge_expired(svc.ctx)
        finally:
            event.remove(engine, "before_cursor_execute", seen)

        assert removed["notifications"] == 5
        assert len(statements) == 3  # 2 + 2 + 1, each in its own transaction
        async with svc.ctx.db.transaction(write=False) as session:
            assert list(await session.scalars(select(Notification.title))) == ["New"]
            assert await session.scalar(select(func.count()).select_from(Delivery)) == 1
