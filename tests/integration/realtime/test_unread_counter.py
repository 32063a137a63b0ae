"""The unread count of the live events: a send adds its items to the stored count,
every other change counts the inbox again; either way the events say what the inbox
says (GET /v1/me/notifications/unread-count)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from tests.conftest import Service, Tokens, make_settings, running
from tests.integration.helpers import deliveries, eventually, send
from tidings.auth.principal import Principal
from tidings.delivery.service import process
from tidings.kit.clock import FrozenClock
from tidings.models import LiveCounter, LiveEvent
from tidings.ops.retention import purge_expired
from tidings.send import service as sends
from tidings.send.schemas import SendCreate


async def _last_event_count(service: Service, user: str) -> int | None:
    async with service.ctx.db.transaction(write=False) as session:
        data = await session.scalar(
            select(LiveEvent.data)
            .where(
                LiveEvent.tenant_id == "acme",
                LiveEvent.recipient_id == user,
                LiveEvent.type == "unread_count",
            )
            .order_by(LiveEvent.seq.desc())
            .limit(1)
        )
    return None if data is None else int(data["count"])


async def _stored(service: Service, user: str) -> int:
    async with service.ctx.db.transaction(write=False) as session:
        value = await session.scalar(
            select(LiveCounter.unread).where(
                LiveCounter.tenant_id == "acme", LiveCounter.recipient_id == user
            )
        )
    return int(value or 0)


async def _inbox_count(service: Service, tokens: Tokens, user: str) -> int:
    r = await service.client.get("/v1/me/notifications/unread-count", headers=tokens.user(user))
    assert r.status_code == 200, r.text
    return int(r.json()["count"])


async def _agree(service: Service, tokens: Tokens, user: str, expected: int) -> None:
    assert await _inbox_count(service, tokens, user) == expected
    assert await _last_event_count(service, user) == expected
    assert await _stored(service, user) == expected


async def test_sends_add_and_every_other_change_recounts(service: Service, tokens: Tokens) -> None:
    first = await send(service.client, tokens, recipients=["cand", "other"], title="a", body="b")
    await send(service.client, tokens, recipients=["cand"], title="c", body="d")
    await _agree(service, tokens, "cand", 2)
    await _agree(service, tokens, "other", 1)

    read = first["notifications"][0]["id"]
    r = await service.client.post(f"/v1/me/notifications/{read}/read", headers=tokens.user("cand"))
    assert r.status_code == 200, r.text
    await _agree(service, tokens, "cand", 1)

    await send(service.client, tokens, recipients=["cand"], title="e", body="f")
    await _agree(service, tokens, "cand", 2)

    r = await service.client.post(
        f"/v1/me/notifications/{read}/unread", headers=tokens.user("cand")
    )
    assert r.status_code == 200, r.text
    await _agree(service, tokens, "cand", 3)

    r = await service.client.delete(f"/v1/me/notifications/{read}", headers=tokens.user("cand"))
    assert r.status_code == 204, r.text
    await _agree(service, tokens, "cand", 2)

    r = await service.client.post("/v1/me/notifications/read-all", headers=tokens.user("cand"))
    assert r.status_code == 200, r.text
    await _agree(service, tokens, "cand", 0)

    await send(service.client, tokens, recipients=["cand", "other"], title="g", body="h")
    await _agree(service, tokens, "cand", 1)
    await _agree(service, tokens, "other", 2)


async def test_an_item_shown_at_its_send_at_is_counted_once(
    tmp_path: Path, database_url: str
) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    settings = make_settings(tmp_path, database_url)
    tokens = Tokens(settings)
    async with running(settings, clock=clock) as svc:
        later = (clock.now() + timedelta(minutes=5)).isoformat()
        await send(svc.client, tokens, recipients=["cand"], title="later", body="b", send_at=later)
        await send(svc.client, tokens, recipients=["cand"], title="now", body="b")
        await _agree(svc, tokens, "cand", 1)

        clock.advance(timedelta(minutes=6))

        async def shown() -> bool:
            return await _last_event_count(svc, "cand") == 2

        await eventually(shown)
        await _agree(svc, tokens, "cand", 2)
        await send(svc.client, tokens, recipients=["cand"], title="after", body="b")
        await _agree(svc, tokens, "cand", 3)


async def test_retention_counts_again_what_it_removed(tmp_path: Path, database_url: str) -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    settings = make_settings(tmp_path, database_url, retention_days=30)
    tokens = Tokens(settings)
    async with running(settings, clock=clock, run_deliveries=False) as svc:
        await send(svc.client, tokens, recipients=["cand"], title="old", body="b")
        await send(svc.client, tokens, recipients=["cand"], title="old too", body="b")
        clock.advance(timedelta(days=31))
        await send(svc.client, tokens, recipients=["cand"], title="new", body="b")
        assert await _stored(svc, "cand") == 3

        await purge_expired(svc.ctx)

        assert await _stored(svc, "cand") == 1 == await _inbox_count(svc, tokens, "cand")
        await send(svc.client, tokens, recipients=["cand"], title="newer", body="b")
        await _agree(svc, tokens, "cand", 2)


async def test_concurrent_sends_and_reads_leave_the_count_exact(
    service: Service, tokens: Tokens
) -> None:
    async def one(i: int) -> None:
        if i % 4 == 0:
            r = await service.client.post(
                "/v1/me/notifications/read-all", headers=tokens.user("cand")
            )
            assert r.status_code == 200, r.text
        else:
            await send(service.client, tokens, recipients=["cand"], title=f"t{i}", body="b")

    await asyncio.gather(*(one(i) for i in range(40)))
    await send(service.client, tokens, recipients=["cand"], title="last", body="b")

    exact = await _inbox_count(service, tokens, "cand")
    assert exact >= 1
    await _agree(service, tokens, "cand", exact)


async def test_a_recount_waits_for_a_send_in_flight(service: Service, tokens: Tokens) -> None:
    await send(service.client, tokens, recipients=["cand"], title="first", body="b")
    ctx = service.ctx
    async with ctx.db.transaction() as session:
        # a send to the same user, stored but not committed yet
        await sends.accept(
            session,
            ctx,
            Principal(tenant="acme", sub="ats", roles=frozenset({"service"})),
            SendCreate(recipients=["cand"], title="in flight", body="b"),
        )
        reading = asyncio.create_task(
            service.client.post("/v1/me/notifications/read-all", headers=tokens.user("cand"))
        )
        await asyncio.sleep(0.3)
        assert not reading.done()  # it waits for the send's counter (or write lock)
    r = await reading
    assert r.status_code == 200, r.text
    # PostgreSQL: the read marked the item it could see (1) and counted the send's, which
    # committed while it waited (1 unread); SQLite: the read waited for the whole send (0)
    exact = await _inbox_count(service, tokens, "cand")
    assert exact == 2 - r.json()["updated"]
    await _agree(service, tokens, "cand", exact)


async def test_an_item_hidden_at_its_expiry_leaves_the_count(
    tmp_path: Path, database_url: str
) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    settings = make_settings(tmp_path, database_url)
    tokens = Tokens(settings)
    async with running(settings, clock=clock, run_deliveries=False) as svc:
        start = clock.now()
        await send(
            svc.client,
            tokens,
            recipients=["cand"],
            title="expires",
            body="b",
            send_at=(start + timedelta(minutes=5)).isoformat(),
            expires_at=(start + timedelta(minutes=6)).isoformat(),
        )
        now_item = await send(svc.client, tokens, recipients=["cand"], title="now", body="b")
        clock.advance(timedelta(minutes=7))
        # a read recounts while the expired item is still visible, not yet processed
        read = now_item["notifications"][0]["id"]
        r = await svc.client.post(f"/v1/me/notifications/{read}/read", headers=tokens.user("cand"))
        assert r.status_code == 200, r.text
        assert await _stored(svc, "cand") == 1

        due = await deliveries(svc.client, tokens, status="scheduled")
        assert len(due) == 1
        await process(svc.ctx, [due[0]["id"]])

        assert await _stored(svc, "cand") == 0 == await _inbox_count(svc, tokens, "cand")
