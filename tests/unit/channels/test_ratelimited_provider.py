"""RateLimitedProvider: waits for its turn, then sends; refuses retryably when too far back."""

from __future__ import annotations

import asyncio

import pytest

from tidings.channels.base import (
    OutboundMessage,
    PermanentSendError,
    Provider,
    RetryableSendError,
    SendResult,
)
from tidings.channels.ratelimited import RateLimitedProvider
from tidings.kit.ratelimit import MemoryRateLimiter, RateLimitExceeded


class Timeline:
    """A fake clock and sleep that log into one event list, so order can be checked."""

    def __init__(self) -> None:
        self.now = 0.0
        self.events: list[tuple[str, object]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        task = asyncio.current_task()
        self.events.append(("sleep", (task.get_name() if task else "", round(seconds, 9))))
        await asyncio.sleep(0)


class FakeSMSProvider:
    def __init__(self, timeline: Timeline, *, fail: Exception | None = None) -> None:
        self.name = "twilio-main"
        self.channel = "sms"
        self.sender_key = "+15550001111"
        self.timeline = timeline
        self.fail = fail
        self.closed = 0

    async def send(self, message: OutboundMessage) -> SendResult:
        self.timeline.events.append(("send", message.delivery_id))
        if self.fail is not None:
            raise self.fail
        return SendResult(provider=self.name, provider_message_id=f"m-{message.delivery_id}")

    async def aclose(self) -> None:
        self.closed += 1


class RecordingLimiter:
    """A limiter that answers from a script and records what it was asked."""

    def __init__(self, answer: float | RateLimitExceeded = 0.0) -> None:
        self.answer = answer
        self.calls: list[tuple[str, float, float, float]] = []
        self.closed = 0

    async def acquire(self, key: str, *, rate: float, burst: float, max_wait: float) -> float:
        self.calls.append((key, rate, burst, max_wait))
        if isinstance(self.answer, RateLimitExceeded):
            raise self.answer
        return self.answer

    async def aclose(self) -> None:
        self.closed += 1


def message(delivery_id: str) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=delivery_id,
        tenant="acme",
        channel="sms",
        target="+15551234567",
        category="interview",
        priority="normal",
        title="t",
        body="b",
        sms_text="hello",
    )


@pytest.fixture
def timeline() -> Timeline:
    return Timeline()


def test_it_is_a_provider_with_the_inner_identity(timeline: Timeline) -> None:
    inner = FakeSMSProvider(timeline)
    wrapped = RateLimitedProvider(inner, RecordingLimiter(), rate=1, burst=1)
    assert isinstance(wrapped, Provider)
    assert (wrapped.name, wrapped.channel) == ("twilio-main", "sms")


async def test_it_asks_for_a_token_of_the_provider_bucket(timeline: Timeline) -> None:
    limiter = RecordingLimiter()
    wrapped = RateLimitedProvider(FakeSMSProvider(timeline), limiter, rate=3, burst=6)
    result = await wrapped.send(message("d1"))
    assert result.provider_message_id == "m-d1"
    assert limiter.calls == [("provider:twilio-main", 3, 6, 30.0)]


async def test_a_burst_is_smoothed_each_send_after_its_wait(timeline: Timeline) -> None:
    limiter = MemoryRateLimiter(clock=timeline.clock, sleep=timeline.sleep)
    wrapped = RateLimitedProvider(FakeSMSProvider(timeline), limiter, rate=2, burst=2)
    tasks = [asyncio.create_task(wrapped.send(message(f"d{n}")), name=f"d{n}") for n in range(5)]
    results = await asyncio.gather(*tasks)
    assert [r.provider_message_id for r in results] == [f"m-d{n}" for n in range(5)]
    events = timeline.events
    sleeps = [e[1] for e in events if e[0] == "sleep"]
    # two go at once; the others each wait their turn, 1/rate apart in arrival order
    assert sleeps == [("d2", 0.5), ("d3", 1.0), ("d4", 1.5)]
    for name, wait in [("d2", 0.5), ("d3", 1.0), ("d4", 1.5)]:
        assert events.index(("sleep", (name, wait))) < events.index(("send", name))
    assert events.index(("send", "d0")) < events.index(("sleep", ("d2", 0.5)))


async def test_wrappers_of_one_provider_share_its_bucket(timeline: Timeline) -> None:
    limiter = MemoryRateLimiter(clock=timeline.clock, sleep=timeline.sleep)
    a = RateLimitedProvider(FakeSMSProvider(timeline), limiter, rate=1, burst=1)
    b = RateLimitedProvider(FakeSMSProvider(timeline), limiter, rate=1, burst=1)
    await a.send(message("d1"))
    await b.send(message("d2"))
    assert [kind for kind, _ in timeline.events] == ["send", "sleep", "send"]
    me = asyncio.current_task()
    assert me is not None
    assert timeline.events[1][1] == (me.get_name(), 1.0)


async def test_a_refusal_is_a_retryable_error_with_retry_after(timeline: Timeline) -> None:
    inner = FakeSMSProvider(timeline)
    limiter = RecordingLimiter(RateLimitExceeded(12.5, key="provider:twilio-main"))
    wrapped = RateLimitedProvider(inner, limiter, rate=1, burst=1, max_wait=10)
    with pytest.raises(RetryableSendError) as info:
        await wrapped.send(message("d1"))
    assert info.value.code == "rate_limited"
    assert info.value.retry_after == 12.5
    assert isinstance(info.value.__cause__, RateLimitExceeded)
    assert "twilio-main" in str(info.value)
    assert timeline.events == []  # nothing was sent


async def test_a_real_limiter_refusal_reaches_the_caller_and_sends_nothing(
    timeline: Timeline,
) -> None:
    limiter = MemoryRateLimiter(clock=timeline.clock, sleep=timeline.sleep)
    wrapped = RateLimitedProvider(FakeSMSProvider(timeline), limiter, rate=0.5, burst=1, max_wait=1)
    await wrapped.send(message("d1"))
    with pytest.raises(RetryableSendError) as info:
        await wrapped.send(message("d2"))
    assert info.value.retry_after == pytest.approx(2.0)
    assert timeline.events == [("send", "d1")]


async def test_the_inner_errors_pass_through(timeline: Timeline) -> None:
    inner = FakeSMSProvider(timeline, fail=PermanentSendError("bad number", code=21211))
    wrapped = RateLimitedProvider(inner, RecordingLimiter(), rate=1, burst=1)
    with pytest.raises(PermanentSendError, match="bad number"):
        await wrapped.send(message("d1"))


def test_unknown_attributes_are_read_from_the_inner_provider(timeline: Timeline) -> None:
    inner = FakeSMSProvider(timeline)
    wrapped = RateLimitedProvider(inner, RecordingLimiter(), rate=1, burst=1)
    assert wrapped.sender_key == "+15550001111"
    assert wrapped.inner is inner
    with pytest.raises(AttributeError):
        _ = wrapped.no_such_attribute


async def test_aclose_closes_the_inner_provider_not_the_shared_limiter(
    timeline: Timeline,
) -> None:
    inner = FakeSMSProvider(timeline)
    limiter = RecordingLimiter()
    await RateLimitedProvider(inner, limiter, rate=1, burst=1).aclose()
    assert (inner.closed, limiter.closed) == (1, 0)


@pytest.mark.parametrize(("rate", "burst", "max_wait"), [(0, 1, 1), (1, 0, 1), (1, 1, -1)])
def test_invalid_limits_are_refused_at_wiring_time(
    timeline: Timeline, rate: float, burst: float, max_wait: float
) -> None:
    with pytest.raises(ValueError, match=r"rate|burst|max_wait"):
        RateLimitedProvider(
            FakeSMSProvider(timeline), RecordingLimiter(), rate=rate, burst=burst, max_wait=max_wait
        )
