"""Faults with real processes only: `tidings serve` and `tidings worker` subprocesses, and
servers of the test's own that it stops and starts again. Every notification is counted.

- the broker (an own redis-server) stops while sends are accepted;
- PostgreSQL (an own cluster) stops under load;
- two API processes and two workers: a send through one reaches a socket on the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import TEST_REDIS_URL, Tokens, make_settings
from tests.distributed.conftest import worker_env
from tests.distributed.servers import ApiProcess, PostgresServer, RedisServer, migrate
from tests.fixtures.smtp_sink import SMTPSink

pytestmark = [pytest.mark.postgresql, pytest.mark.faults]

PROBLEM_JSON = "application/problem+json"


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A started PostgreSQL cluster of this test's own with an empty database."""
    server = PostgresServer()
    try:
        server.start()
        server.create_database()
        yield server
    finally:
        server.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A started redis-server of this test's own, on a spare port."""
    server = RedisServer(tmp_path / "redis")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Any]:
    """Start `tidings serve` processes (ready when returned); all stop at teardown."""
    apis: list[ApiProcess] = []

    def start(env: dict[str, str], name: str = "api") -> ApiProcess:
        api = ApiProcess(
            {**env, "TIDINGS_DATA_DIR": str(tmp_path / name)},
            tmp_path / f"{name}.log",
            name=name,
        )
        apis.append(api)
        api.wait_ready()
        return api

    try:
        yield start
    finally:
        for api in apis:
            api.stop()


def smtp_env(sink: SMTPSink) -> dict[str, str]:
    return {
        "TIDINGS_SMTP_HOST": "127.0.0.1",
        "TIDINGS_SMTP_PORT": str(sink.port),
        "TIDINGS_SMTP_STARTTLS": "false",
    }


def tenant_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def client_for(api: ApiProcess, timeout: float = 15) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.base_url, timeout=timeout) as client:
        yield client


async def query(url: str, statement: str, **params: Any) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(statement), params)).all())
    finally:
        await engine.dispose()


async def add_recipients(
    client: httpx.AsyncClient, tokens: Tokens, tenant: str, ids: list[str]
) -> None:
    for rid in ids:
        r = await client.put(
            f"/v1/recipients/{rid}",
            json={"email": f"{rid}@example.test"},
            headers=tokens.service(tenant),
        )
        assert r.status_code in (200, 201), r.text


async def wait_for(check: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {value!r}")
        await asyncio.sleep(interval)


# ---------------------------------------------------------------- 1. broker stopped


async def test_broker_stopped_then_back(
    tmp_path: Path,
    clean_pg: str,
    own_redis: RedisServer,
    smtp_sink: SMTPSink,
    start_worker: Any,
    start_api: Any,
) -> None:
    env = worker_env(
        tmp_path,
        clean_pg,
        own_redis.url(),
        TIDINGS_CLAIM_LEASE_SECONDS="2",
        **smtp_env(smtp_sink),
    )
    worker = start_worker(env, "--concurrency", "2")
    api = start_api(env, "api")
    tokens = Tokens(make_settings(tmp_path / "tokens", clean_pg))
    tenant = tenant_id("broker")
    ids = [f"c{i:02d}" for i in range(20)]
    async with client_for(api) as client:
        await add_recipients(client, tokens, tenant, [*ids, "warm"])
        # the worker consumes before the outage: one e-mail goes through the broker
        r = await client.post(
            "/v1/notifications",
            headers=tokens.service(tenant),
            json={"recipients": ["warm"], "title": "warm-up", "body": "b", "channels": ["email"]},
        )
        assert r.status_code == 202, r.text
        try:
            await smtp_sink.wait_for_messages_async(1, timeout=30)
        except TimeoutError:
            raise AssertionError(worker.output() + api.output()) from None
        # ... and acknowledged it: the task acks after the e-mail went out, and a broker
        # that stops during that ack is another fault than the one this test is about
        broker = aioredis.Redis.from_url(own_redis.url())

        async def acked() -> bool | None:
            return True if await broker.hlen("unacked") == 0 else None

        try:
            await wait_for(acked, 10, "the warm-up task acknowledged")
        finally:
            await broker.aclose()

        await asyncio.to_thread(own_redis.stop)
        timings: list[float] = []
        send_ids: list[str] = []
        for i, rid in enumerate(ids):
            started = time.monotonic()
            r = await client.post(
                "/v1/notifications",
                headers=tokens.service(tenant),
                json={
                    "recipients": [rid],
                    "title": f"b{i:02d}",
                    "body": "b",
                    "channels": ["email"],
                },
            )
            timings.append(time.monotonic() - started)
            assert r.status_code == 202, r.text
            send_ids.append(r.json()["id"])
        # a broker outage does not make the API unready
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert max(timings) < 2, timings
        assert len(smtp_sink.messages) == 1  # nothing can have gone out without the broker

        await asyncio.to_thread(own_redis.start)
        back = time.monotonic()
        try:
            await smtp_sink.wait_for_messages_async(21, timeout=45)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{worker.output()}\n{api.output()}") from None
        delivered_after = time.monotonic() - back

        async def all_sent() -> list[dict[str, Any]] | None:
            r = await client.get(
                "/v1/deliveries", params={"limit": 200}, headers=tokens.admin(tenant)
            )
            assert r.status_code == 200, r.text
            items: list[dict[str, Any]] = r.json()["items"]
            done = len(items) == 21 and all(d["status"] == "sent" for d in items)
            return items if done else None

        deliveries = await wait_for(all_sent, 20, "every delivery sent")
    assert {d["send_id"] for d in deliveries} >= set(send_ids)
    # count every notification: one per send, one e-mail per notification
    rows = await query(
        clean_pg,
        "SELECT n.send_id, count(*) FROM notifications n WHERE n.tenant_id = :t GROUP BY n.send_id",
        t=tenant,
    )
    assert len(rows) == 21 and all(count == 1 for _, count in rows), rows
    assert set(send_ids) <= {send_id for send_id, _ in rows}
    await asyncio.sleep(1)  # a late duplicate would show up now
    subjects = Counter(m.message["Subject"] for m in smtp_sink.messages)
    duplicates = sum(subjects.values()) - len(subjects)
    assert set(subjects) == {"warm-up", *(f"b{i:02d}" for i in range(20))}
    assert duplicates == 0, subjects
    print(
        f"\nbroker outage: 20 sends accepted, slowest answer {max(timings) * 1000:.0f} ms, "
        f"mean {sum(timings) / len(timings) * 1000:.0f} ms; all 21 e-mails out "
        f"{delivered_after:.1f} s after the broker came back; {duplicates} duplicates"
    )


# ---------------------------------------------------------------- 2. PostgreSQL stopped


@dataclass
class Outcome:
    started: float
    finished: float
    status: int | None
    content_type: str = ""
    retry_after: str | None = None
    send_id: str | None = None
    title: str = ""
    error: str | None = None
    problem: dict[str, Any] | None = None


async def test_postgresql_stopped_under_load(
    tmp_path: Path,
    own_postgres: PostgresServer,
    smtp_sink: SMTPSink,
    start_api: Any,
) -> None:
    env = worker_env(
        tmp_path,
        own_postgres.url,
        "",
        TIDINGS_SWEEP_INTERVAL_SECONDS="0.2",
        TIDINGS_CLAIM_LEASE_SECONDS="3",
        TIDINGS_RETRY_MAX_SECONDS="2",
        **smtp_env(smtp_sink),
    )
    env.pop("TIDINGS_BROKER_URL")  # the embedded runner delivers in the API process
    await asyncio.to_thread(migrate, env)
    api = start_api(env, "api")
    tokens = Tokens(make_settings(tmp_path / "tokens", own_postgres.url))
    tenant = tenant_id("pg")
    recipients = [f"r{i}" for i in range(10)]
    outcomes: list[Outcome] = []
    readyz: list[tuple[int, str]] = []
    marks: dict[str, float] = {}
    counter = iter(range(1_000_000))

    async with client_for(api) as client:
        await add_recipients(client, tokens, tenant, recipients)
        stop_load = asyncio.Event()

        async def load() -> None:
            while not stop_load.is_set():
                n = next(counter)
                title = f"L{n:05d}"
                started = time.monotonic()
                try:
                    r = await client.post(
                        "/v1/notifications",
                        headers=tokens.service(tenant),
                        json={
                            "recipients": [recipients[n % len(recipients)]],
                            "title": title,
                            "body": "b",
                            "channels": ["in_app", "email"],
                        },
                    )
                except httpx.HTTPError as exc:
                    outcomes.append(
                        Outcome(started, time.monotonic(), None, title=title, error=repr(exc))
                    )
                else:
                    outcome = Outcome(
                        started,
                        time.monotonic(),
                        r.status_code,
                        content_type=r.headers.get("content-type", ""),
                        retry_after=r.headers.get("retry-after"),
                        title=title,
                    )
                    if r.status_code == 202:
                        outcome.send_id = r.json()["id"]
                    elif r.headers.get("content-type", "").startswith("application/"):
                        outcome.problem = r.json()
                    outcomes.append(outcome)
                await asyncio.sleep(0.03)

        async def outage() -> None:
            marks["t0"] = time.monotonic()
            await asyncio.sleep(2)
            marks["stopping"] = time.monotonic()
            await asyncio.to_thread(own_postgres.stop, "fast")
            marks["stopped"] = time.monotonic()
            await asyncio.sleep(1)
            r = await client.get("/readyz")
            readyz.append((r.status_code, r.headers.get("content-type", "")))
            await asyncio.sleep(1)
            marks["starting"] = time.monotonic()
            await asyncio.to_thread(own_postgres.start)
            marks["started"] = time.monotonic()

            # keep the load on until the API has answered 202 for a while by itself
            async def recovered() -> bool:
                late = [o for o in outcomes if o.started > marks["started"]]
                return any(o.status == 202 for o in late)

            await wait_for(recovered, 15, "a 202 after PostgreSQL came back", interval=0.05)
            marks["recovered"] = min(
                o.finished for o in outcomes if o.started > marks["started"] and o.status == 202
            )
            await asyncio.sleep(max(1.5, marks["t0"] + 6 - time.monotonic()))
            stop_load.set()

        loads = [asyncio.create_task(load()) for _ in range(4)]
        try:
            await outage()
        finally:
            stop_load.set()
            await asyncio.gather(*loads)
        after = await client.get("/readyz")
        assert after.status_code == 200, after.text

        statuses = Counter(o.status for o in outcomes)
        errors = [o for o in outcomes if o.error is not None]
        assert not errors, [o.error for o in errors[:5]]
        assert set(statuses) <= {202, 503}, (statuses, [o.problem for o in outcomes][:5])
        unavailable = [o for o in outcomes if o.status == 503]
        assert unavailable, f"no 503 seen while PostgreSQL was down: {statuses}"
        for o in unavailable:
            assert o.content_type.startswith(PROBLEM_JSON), o
            assert o.retry_after is not None and o.retry_after.isdigit(), o
            assert o.problem is not None and o.problem["status"] == 503, o
        # 503 only while the server was (going) down or just back, never before or long after
        assert all(marks["stopping"] - 0.5 <= o.started < marks["recovered"] for o in unavailable)
        assert readyz and readyz[0][0] == 503 and readyz[0][1].startswith(PROBLEM_JSON), readyz
        late = [o for o in outcomes if o.started >= marks["recovered"]]
        assert late and all(o.status == 202 for o in late), Counter(o.status for o in late)
        slowest = max(o.finished - o.started for o in outcomes)
        assert slowest < 10, slowest  # nobody hangs on the dead server

        accepted = {o.send_id: o.title for o in outcomes if o.status == 202}
        assert None not in accepted

        # every 202 is in the database, with its notification and both deliveries
        async def delivered() -> list[Any] | None:
            rows = await query(
                own_postgres.url,
                "SELECT d.channel, d.status, count(*) FROM deliveries d "
                "WHERE d.tenant_id = :t GROUP BY d.channel, d.status",
                t=tenant,
            )
            counts = {(c, s): n for c, s, n in rows}
            done = counts == {
                ("in_app", "delivered"): len(accepted),
                ("email", "sent"): len(accepted),
            }
            return rows if done else None

        try:
            await wait_for(delivered, 40, "every accepted delivery done", interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{api.output()}") from None

    sends = await query(own_postgres.url, "SELECT id FROM sends WHERE tenant_id = :t", t=tenant)
    assert {row[0] for row in sends} == set(accepted), "sends in the database != 202 answers"
    notes = await query(
        own_postgres.url,
        "SELECT send_id, count(*) FROM notifications WHERE tenant_id = :t GROUP BY send_id",
        t=tenant,
    )
    assert dict(notes) == dict.fromkeys(accepted, 1)
    await smtp_sink.wait_for_messages_async(len(accepted), timeout=20)
    await asyncio.sleep(1)  # a late duplicate would show up now
    subjects = Counter(m.message["Subject"] for m in smtp_sink.messages)
    assert set(subjects) == set(accepted.values()), "e-mails sent != accepted e-mails"
    duplicates = sum(subjects.values()) - len(subjects)
    # only a batch in flight when the server went away can go out twice
    assert duplicates <= 20, duplicates
    print(
        f"\nPostgreSQL outage: {len(outcomes)} requests, {statuses[202]} x 202, "
        f"{statuses[503]} x 503; stop took {marks['stopped'] - marks['stopping']:.2f} s, "
        f"down {marks['started'] - marks['stopped']:.2f} s; first 202 "
        f"{marks['recovered'] - marks['started']:.2f} s after the restart; slowest answer "
        f"{slowest:.2f} s; {len(accepted)} sends = {sum(n for _, n in notes)} notifications "
        f"in the database; {sum(subjects.values())} e-mails, {duplicates} duplicates"
    )


# ---------------------------------------------------------------- 3. two APIs, two workers


def _bearer(tokens: Tokens, tenant: str, sub: str) -> str:
    return tokens.user(sub, tenant)["Authorization"].removeprefix("Bearer ")


async def _open_socket(api: ApiProcess, tokens: Tokens, tenant: str, sub: str) -> ClientConnection:
    bearer = _bearer(tokens, tenant, sub)
    ws = await connect(api.ws_url(), subprotocols=["tidings.v1", f"bearer.{bearer}"])
    hello = await _frame(ws, 5)
    assert hello["type"] == "hello", hello
    return ws


async def _frame(ws: ClientConnection, timeout: float) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame


async def _created(ws: ClientConnection, notification_id: str, deadline: float) -> float:
    """Wait for notification.created of that notification; return when it arrived."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        frame = await _frame(ws, remaining)
        if frame["type"] == "notification.created" and frame["data"]["id"] == notification_id:
            return time.monotonic()


async def _subscribed(tenant: str, sub: str) -> bool:
    """Whether some process listens on the user's Redis channel (RedisHub.PREFIX)."""
    client = aioredis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        channel = f"tidings:live:{tenant}:{sub}"
        counts = await client.pubsub_numsub(channel)
        return bool(counts and counts[0][1] > 0)
    finally:
        await client.aclose()


async def _send_in_app(
    client: httpx.AsyncClient, tokens: Tokens, tenant: str, recipients: list[str], title: str
) -> dict[str, Any]:
    r = await client.post(
        "/v1/notifications",
        headers=tokens.service(tenant),
        json={"recipients": recipients, "title": title, "body": "b", "channels": ["in_app"]},
    )
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_two_api_processes_two_workers_websocket(
    tmp_path: Path,
    clean_pg: str,
    redis_url: str,
    redis_broker: str,
    start_worker: Any,
    start_api: Any,
) -> None:
    env = worker_env(tmp_path, clean_pg, redis_broker, TIDINGS_REDIS_URL=redis_url)
    workers = [start_worker(env, "--concurrency", "1") for _ in range(2)]
    api_a = start_api(env, "api-a")
    api_b = start_api(env, "api-b")
    tokens = Tokens(make_settings(tmp_path / "tokens", clean_pg))
    tenant = tenant_id("ws")  # Redis channels are shared by every test run
    latencies: list[float] = []
    sent_ids: list[str] = []
    async with client_for(api_a) as client:
        ws = await _open_socket(api_b, tokens, tenant, "cand")
        try:
            # B's listener is on the user's channel (this test is not about a fresh socket)
            await wait_for(lambda: _subscribed(tenant, "cand"), 5, "B to subscribe", 0.02)
            for i in range(5):
                started = time.monotonic()
                accepted = await _send_in_app(client, tokens, tenant, ["cand"], f"live {i}")
                sent_ids.append(accepted["id"])
                try:
                    arrived = await _created(ws, accepted["notifications"][0]["id"], started + 1.0)
                except TimeoutError:
                    raise AssertionError(
                        f"round {i}: no notification.created on B within 1 s of the send "
                        f"through A\n{api_a.output()}\n{api_b.output()}"
                    ) from None
                latencies.append(arrived - started)
                await asyncio.sleep(0.1)
        finally:
            await ws.close()

        # the two workers deliver the in_app deliveries
        async def delivered() -> bool:
            rows = await query(
                clean_pg,
                "SELECT status, count(*) FROM deliveries WHERE tenant_id = :t GROUP BY status",
                t=tenant,
            )
            return dict(rows) == {"delivered": 5}

        try:
            await wait_for(delivered, 30, "the workers to deliver all 5 in_app deliveries")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{workers[0].output()}\n{workers[1].output()}") from None
    assert all(w.process.poll() is None for w in workers)
    assert max(latencies) < 1, latencies
    rows = await query(
        clean_pg,
        "SELECT send_id, recipient_id FROM notifications WHERE tenant_id = :t",
        t=tenant,
    )
    assert Counter(send_id for send_id, _ in rows) == dict.fromkeys(sent_ids, 1)
    assert {rid for _, rid in rows} == {"cand"}
    print(
        "\ntwo APIs, two workers: send through A -> notification.created on B in "
        + ", ".join(f"{x * 1000:.0f}" for x in latencies)
        + " ms; 5 sends = 5 notifications, 5 delivered by the workers"
    )


async def test_socket_just_opened_on_b_gets_a_send_through_a(
    tmp_path: Path,
    clean_pg: str,
    redis_url: str,
    start_api: Any,
) -> None:
    env = worker_env(tmp_path, clean_pg, "", TIDINGS_REDIS_URL=redis_url)
    env.pop("TIDINGS_BROKER_URL")  # each API process delivers in_app itself
    api_a = start_api(env, "api-a")
    api_b = start_api(env, "api-b")
    tokens = Tokens(make_settings(tmp_path / "tokens", clean_pg))
    tenant = tenant_id("ws-fresh")
    outcomes: list[str] = []
    async with client_for(api_a) as client:
        # B already listens for somebody (as any busy API process does)
        other = await _open_socket(api_b, tokens, tenant, "recruiter")
        try:
            await wait_for(lambda: _subscribed(tenant, "recruiter"), 5, "B to subscribe", 0.02)
            for i in range(5):
                user = f"cand-{i}"
                ws = await _open_socket(api_b, tokens, tenant, user)
                try:
                    # hello arrived: the client may expect everything from now on, live
                    started = time.monotonic()
                    accepted = await _send_in_app(client, tokens, tenant, [user], f"fresh {i}")
                    note = accepted["notifications"][0]["id"]
                    try:
                        arrived = await _created(ws, note, started + 1.0)
                        outcomes.append(f"{(arrived - started) * 1000:.0f} ms")
                    except TimeoutError:
                        try:
                            arrived = await _created(ws, note, started + 3.0)
                            outcomes.append(f"late: {arrived - started:.2f} s")
                        except TimeoutError:
                            outcomes.append("missed (nothing within 3 s)")
                finally:
                    await ws.close()
        finally:
            await other.close()
    rows = await query(
        clean_pg, "SELECT count(*) FROM notifications WHERE tenant_id = :t", t=tenant
    )
    assert rows[0][0] == 5
    print(f"\nsocket opened on B just before a send through A: {outcomes}")
    assert all(o.endswith(" ms") for o in outcomes), outcomes
