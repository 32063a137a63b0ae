"""The in-process token bucket, on a fake clock: nothing here really waits."""

from __future__ import annotations

import asyncio
import random

import pytest

from tidings.kit.ratelimit import MemoryRateLimiter, RateLimiter, RateLimitExceeded


class FakeTime:
    """A monotonic clock that moves only when told, and a sleep that records and yields."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


@pytest.fixture
def limiter(time_: FakeTime) -> MemoryRateLimiter:
    return MemoryRateLimiter(clock=time_.clock, sleep=time_.sleep)


def test_memory_limiter_satisfies_the_port() -> None:
    port: RateLimiter = MemoryRateLimiter()
    assert port is not None


async def test_a_burst_passes_at_once(limiter: MemoryRateLimiter, time_: FakeTime) -> None:
    waits = [await limiter.acquire("k", rate=10, burst=3, max_wait=10) for _ in range(3)]
    assert waits == [0.0, 0.0, 0.0]
    assert time_.slept == []


async def test_callers_after_the_burst_are_spaced_one_over_rate_apart(
    limiter: MemoryRateLimiter, time_: FakeTime
) -> None:
    waits = [await limiter.acquire("k", rate=10, burst=3, max_wait=10) for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 0.1, 0.2, 0.3])
    assert time_.slept == pytest.approx([0.1, 0.2, 0.3])


async def test_the_bucket_refills_over_time_up_to_the_burst(
    limiter: MemoryRateLimiter, time_: FakeTime
) -> None:
    for _ in range(3):
        await limiter.acquire("k", rate=10, burst=3, max_wait=10)
    time_.now += 0.25  # 2.5 tokens back
    waits = [await limiter.acquire("k", rate=10, burst=3, max_wait=10) for _ in range(3)]
    assert waits == pytest.approx([0, 0, 0.05])

    time_.now += 3600  # a long idle period fills the bucket, but only to the burst
    waits = [await limiter.acquire("k", rate=10, burst=3, max_wait=10) for _ in range(4)]
    assert waits == pytest.approx([0, 0, 0, 0.1])


async def test_queued_callers_are_paid_back_before_new_tokens_accumulate(
    limiter: MemoryRateLimiter, time_: FakeTime
) -> None:
    for _ in range(5):  # burst 1: four callers queued, the last one due in 0.4 s
        await limiter.acquire("k", rate=10, burst=1, max_wait=10)
    time_.now += 0.2  # two of the queued callers have had their turn
    assert await limiter.acquire("k", rate=10, burst=1, max_wait=10) == pytest.approx(0.3)


async def test_a_refusal_reserves_nothing(limiter: MemoryRateLimiter, time_: FakeTime) -> None:
    assert await limiter.acquire("k", rate=1, burst=1, max_wait=0.5) == 0.0
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.acquire("k", rate=1, burst=1, max_wait=0.5)
    assert info.value.retry_after == pytest.approx(1.0)
    assert info.value.key == "k"
    with pytest.raises(RateLimitExceeded):
        await limiter.acquire("k", rate=1, burst=1, max_wait=0.5)
    assert time_.slept == []
    # had the refusals reserved anything, this caller would wait 3 s
    assert await limiter.acquire("k", rate=1, burst=1, max_wait=5) == pytest.approx(1.0)


async def test_a_wait_of_exactly_max_wait_is_accepted(limiter: MemoryRateLimiter) -> None:
    await limiter.acquire("k", rate=4, burst=1, max_wait=0.25)
    assert await limiter.acquire("k", rate=4, burst=1, max_wait=0.25) == pytest.approx(0.25)


async def test_max_wait_zero_means_never_queue(limiter: MemoryRateLimiter) -> None:
    assert await limiter.acquire("k", rate=2, burst=2, max_wait=0) == 0.0
    assert await limiter.acquire("k", rate=2, burst=2, max_wait=0) == 0.0
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.acquire("k", rate=2, burst=2, max_wait=0)
    assert info.value.retry_after == pytest.approx(0.5)


async def test_concurrent_callers_get_distinct_slots_in_arrival_order(
    limiter: MemoryRateLimiter, time_: FakeTime
) -> None:
    async def caller() -> float:
        return await limiter.acquire("k", rate=20, burst=5, max_wait=60)

    waits = await asyncio.gather(*(caller() for _ in range(50)))
    assert waits == pytest.approx([0.0] * 5 + [n / 20 for n in range(1, 46)])
    assert len(set(waits[5:])) == 45
    assert sorted(time_.slept) == pytest.approx([n / 20 for n in range(1, 46)])


async def test_buckets_are_independent(limiter: MemoryRateLimiter) -> None:
    assert await limiter.acquire("a", rate=1, burst=1, max_wait=5) == 0.0
    assert await limiter.acquire("b", rate=1, burst=1, max_wait=5) == 0.0
    assert await limiter.acquire("a", rate=1, burst=1, max_wait=5) == pytest.approx(1.0)


async def test_a_clock_stepping_back_adds_no_tokens(
    limiter: MemoryRateLimiter, time_: FakeTime
) -> None:
    await limiter.acquire("k", rate=1, burst=1, max_wait=5)
    time_.now -= 100
    assert await limiter.acquire("k", rate=1, burst=1, max_wait=5) == pytest.approx(1.0)


async def test_a_cancelled_waiter_forfeits_its_slot(time_: FakeTime) -> None:
    blocked = asyncio.Event()

    async def forever(seconds: float) -> None:
        blocked.set()
        await asyncio.Event().wait()

    limiter = MemoryRateLimiter(clock=time_.clock, sleep=forever)
    await limiter.acquire("k", rate=10, burst=1, max_wait=5)
    waiter = asyncio.create_task(limiter.acquire("k", rate=10, burst=1, max_wait=5))
    await blocked.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # the limit is never exceeded: the cancelled slot (0.1 s) is not handed out again
    assert limiter.reserve("k", rate=10, burst=1, max_wait=5) == pytest.approx(0.2)


async def test_the_limit_holds_for_any_arrival_pattern(time_: FakeTime) -> None:
    """Every send time (arrival + wait) conforms: at most burst + rate * T in any window T."""
    rate, burst = 5.0, 3.0
    limiter = MemoryRateLimiter(clock=time_.clock, sleep=time_.sleep)
    rng = random.Random(20240611)
    sends: list[float] = []
    for _ in range(300):
        time_.now += rng.choice([0.0, 0.0, 0.01, 0.05, 0.2, 1.5])
        wait = await limiter.acquire("k", rate=rate, burst=burst, max_wait=1e9)
        sends.append(time_.now + wait)
    assert sends == sorted(sends)  # served in arrival order
    for i, start in enumerate(sends):
        for j in range(i, len(sends)):
            assert j - i + 1 <= burst + rate * (sends[j] - start) + 1e-9


@pytest.mark.parametrize(
    ("rate", "burst", "max_wait"), [(0, 1, 1), (-1, 1, 1), (1, 0.5, 1), (1, 1, -1)]
)
async def test_invalid_parameters_are_refused(rate: float, burst: float, max_wait: float) -> None:
    with pytest.raises(ValueError, match=r"rate|burst|max_wait"):
        await MemoryRateLimiter().acquire("k", rate=rate, burst=burst, max_wait=max_wait)


def test_the_refusal_says_when_to_come_back() -> None:
    exc = RateLimitExceeded(1.25, key="provider:smtp")
    assert exc.retry_after == 1.25
    assert "1.250s" in str(exc)
    assert "provider:smtp" in str(exc)
