"""RedisRateLimiter on the real Redis: one bucket shared by processes, and outages survived.

The waits asserted are those the Lua script computes on Redis's clock; the limiters get a
recording sleep, so nothing here waits for real and the test's own timing does not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio

from tests.fixtures.smtp_sink import free_port
from tidings.kit.ratelimit import MemoryRateLimiter, RateLimitExceeded, RedisRateLimiter

LOGGER = "tidings.kit.ratelimit"


class Sleeps:
    """A sleep that records instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    value = f"tidings-test:ratelimit:{uuid.uuid4().hex[:12]}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{value}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextlib.asynccontextmanager
async def limiter(url: str, **kwargs: object) -> AsyncIterator[RedisRateLimiter]:
    instance = RedisRateLimiter(url, **kwargs)  # type: ignore[arg-type]
    try:
        yield instance
    finally:
        await instance.aclose()


async def redis_time(client: redis.asyncio.Redis) -> float:
    seconds, micros = await client.time()
    return float(seconds) + micros / 1e6


async def test_two_processes_share_one_bucket(redis_url: str, prefix: str) -> None:
    rate, burst, spacing, slack = 50.0, 5.0, 1 / 50, 1e-5  # slack: ts is kept to the µs
    sleeps = Sleeps()
    clients = [redis.asyncio.Redis.from_url(redis_url) for _ in range(2)]
    try:
        # open a connection per caller first, so the reservations arrive back to back
        for client in clients:
            await asyncio.gather(*(client.ping() for _ in range(13)))
        a, b = (RedisRateLimiter(client, prefix=prefix, sleep=sleeps) for client in clients)
        await a.acquire("warm", rate=1, burst=1, max_wait=0)  # the script is loaded
        owners = ([a, b] * 13)[:25]
        started = await redis_time(clients[0])
        waits = await asyncio.gather(
            *(
                owner.acquire("provider:twilio", rate=rate, burst=burst, max_wait=10)
                for owner in owners
            )
        )
        # every reservation was computed on Redis's clock within [started, started + took]
        took = await redis_time(clients[0]) - started
    finally:
        for client in clients:
            await client.aclose()
    assert took < 0.2  # else the bounds below say little

    for owner in (a, b):  # both "processes" were made to queue behind the other's callers
        assert any(w > 0 for o, w in zip(owners, waits, strict=True) if o is owner)
    ordered = sorted(waits)
    immediate = [w for w in ordered if w == 0]
    # one bucket: the burst at once, plus the tokens that refilled while the calls arrived
    # (a bucket per process would have let at least 10 through)
    assert burst <= len(immediate) <= burst + rate * took
    queued = ordered[len(immediate) :]
    gaps = [later - earlier for earlier, later in itertools.pairwise(queued)]
    # each queued caller is due 1/rate after the previous one; its wait is shorter than
    # that only by the Redis time that passed between the two calls
    assert all(spacing - took - slack <= gap <= spacing + slack for gap in gaps), gaps
    # the last of 25 is due 20/rate after the first call, less the time the calls took
    assert 20 * spacing - took - slack <= queued[-1] <= 20 * spacing + slack
    assert sorted(sleeps.calls) == queued  # each queued caller slept exactly its wait


async def test_a_refusal_reserves_nothing(redis_url: str, prefix: str) -> None:
    sleeps = Sleeps()
    async with limiter(redis_url, prefix=prefix, sleep=sleeps) as rl:
        assert await rl.acquire("k", rate=1, burst=1, max_wait=0.5) == 0.0
        for _ in range(3):
            with pytest.raises(RateLimitExceeded) as info:
                await rl.acquire("k", rate=1, burst=1, max_wait=0.5)
            assert info.value.retry_after == pytest.approx(1.0, abs=0.05)
        assert sleeps.calls == []
        # had the refusals reserved anything, this wait would be about 4 s
        assert await rl.acquire("k", rate=1, burst=1, max_wait=5) == pytest.approx(1.0, abs=0.05)
        assert sleeps.calls == [pytest.approx(1.0, abs=0.05)]

    client = redis.Redis.from_url(redis_url)
    try:
        state = client.hgetall(f"{prefix}k")
        ttl = client.pttl(f"{prefix}k")
    finally:
        client.close()
    assert float(state[b"tokens"]) == pytest.approx(-1.0, abs=0.05)
    assert b"ts" in state
    # time to refill from -1 to 1 at 1/s is 2 s; the key lives a little longer
    assert 2000 < ttl <= 3000


async def test_an_unreachable_redis_falls_back_to_a_local_bucket(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    sleeps = Sleeps()
    local = MemoryRateLimiter(clock=clock, sleep=sleeps)
    url = f"redis://127.0.0.1:{free_port()}/0"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    async with limiter(url, fallback=local, clock=clock, sleep=sleeps, probe_interval=0) as rl:
        waits = [await rl.acquire("k", rate=10, burst=2, max_wait=5) for _ in range(4)]
        assert waits == pytest.approx([0, 0, 0.1, 0.2])
        assert sleeps.calls == pytest.approx([0.1, 0.2])
        warnings = [r for r in caplog.records if r.name == LOGGER]
        assert len(warnings) == 1
        assert warnings[0].levelno == logging.WARNING
        assert "this process only" in warnings[0].getMessage()

        clock.now += 61  # the next failure after a minute is reported again
        await rl.acquire("k", rate=10, burst=2, max_wait=5)
        assert len([r for r in caplog.records if r.name == LOGGER]) == 2


async def test_a_silent_redis_costs_one_short_timeout() -> None:
    """A server that accepts but never answers must not stall sends."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        async with limiter(f"redis://127.0.0.1:{port}/0", timeout=0.2) as rl:
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await rl.acquire("k", rate=1, burst=1, max_wait=1) == 0.0
            assert loop.time() - started < 1.0
            started = loop.time()  # within the probe interval Redis is not asked at all
            assert await rl.acquire("other", rate=1, burst=1, max_wait=1) == 0.0
            assert loop.time() - started < 0.1


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def tcp_proxy(port: int, target_url: str) -> AsyncIterator[None]:
    """Forward 127.0.0.1:``port`` to the Redis of ``target_url`` (Redis "coming back")."""
    target = urlsplit(target_url)
    pipes: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port or 6379)
        for task in (_pipe(reader, up_writer), _pipe(up_reader, writer)):
            pipes.add(asyncio.create_task(task))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        await asyncio.wait_for(asyncio.gather(*pipes, return_exceptions=True), 2)
        await server.wait_closed()


async def test_it_goes_back_to_redis_when_it_answers_again(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    sleeps = Sleeps()
    port = free_port()
    caplog.set_level(logging.INFO, logger=LOGGER)
    check = redis.Redis.from_url(redis_url)
    try:
        async with contextlib.AsyncExitStack() as stack:
            rl = await stack.enter_async_context(
                limiter(
                    f"redis://127.0.0.1:{port}/0",
                    prefix=prefix,
                    clock=clock,
                    sleep=sleeps,
                    probe_interval=1.0,
                )
            )
            assert await rl.acquire("k", rate=1, burst=1, max_wait=5) == 0.0  # locally
            assert not check.exists(f"{prefix}k")

            await stack.enter_async_context(tcp_proxy(port, redis_url))
            # Redis is back, but is not asked again before the probe interval has passed
            wait = await rl.acquire("k", rate=1, burst=1, max_wait=5)
            assert wait == pytest.approx(1.0, abs=0.1)  # the local bucket, on the real clock
            assert not check.exists(f"{prefix}k")

            clock.now += 1.5
            assert await rl.acquire("k", rate=1, burst=1, max_wait=5) == 0.0  # Redis's bucket
            assert check.exists(f"{prefix}k")
            assert any("answers again" in r.getMessage() for r in caplog.records)
            await rl.aclose()  # before the proxy stops: its connections must end first
    finally:
        check.close()


async def test_a_client_passed_in_stays_open(redis_url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        rl = RedisRateLimiter(client, prefix=prefix)
        assert await rl.acquire("k", rate=1, burst=2, max_wait=0) == 0.0
        await rl.aclose()
        assert await client.ping()
    finally:
        await client.aclose()
