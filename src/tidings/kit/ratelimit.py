"""Token-bucket rate limits that smooth a burst instead of rejecting it.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second. Taking a
token is a *reservation*: when none is left the bucket goes negative, and the caller sleeps
until its own token is due. Callers are thus queued in arrival order, 1/rate apart, and
the limit is never exceeded. A caller whose turn is more than ``max_wait`` away reserves
nothing and gets ``RateLimitExceeded`` with the delay after which a token would be free.

``MemoryRateLimiter`` limits one process; ``RedisRateLimiter`` shares each bucket among
every process that uses the same Redis, and falls back to a local bucket while Redis is
unreachable, so an outage never fails (or stalls) a send.

A waiter that is cancelled forfeits its slot: its token stays spent, which errs on the
side of sending less than the limit, never more.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

__all__ = [
    "MemoryRateLimiter",
    "RateLimitExceeded",
    "RateLimiter",
    "RedisRateLimiter",
]

logger = logging.getLogger(__name__)

MonotonicClock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]


class RateLimitExceeded(Exception):
    """The caller's turn is further away than it agreed to wait; nothing was reserved.

    ``retry_after`` is how many seconds from now a token would be free for it.
    """

    def __init__(self, retry_after: float, *, key: str = "") -> None:
        where = f" for {key!r}" if key else ""
        super().__init__(f"rate limit exceeded{where}; a token is free in {retry_after:.3f}s")
        self.retry_after = retry_after
        self.key = key


class RateLimiter(Protocol):
    """Named token buckets: the port, with ``MemoryRateLimiter`` and ``RedisRateLimiter``."""

    async def acquire(self, key: str, *, rate: float, burst: float, max_wait: float) -> float:
        """Reserve one token of bucket ``key`` and wait for it.

        The bucket refills at ``rate`` tokens per second up to ``burst`` (which is also
        its content the first time it is used). Return 0.0 when a token is available now;
        otherwise sleep until this caller's token is due and return the seconds waited.
        If that wait would exceed ``max_wait``, reserve nothing and raise
        ``RateLimitExceeded``.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the limiter is not used afterwards."""
        ...


def _check(rate: float, burst: float, max_wait: float) -> None:
    if not rate > 0:
        raise ValueError(f"rate must be positive, not {rate!r}")
    if not burst >= 1:
        raise ValueError(f"burst must be at least 1, not {burst!r}")
    if not max_wait >= 0:
        raise ValueError(f"max_wait must not be negative, not {max_wait!r}")


@dataclass(slots=True)
class _Bucket:
    tokens: float  # negative: that many tokens are already promised to waiting callers
    stamp: float  # clock reading at which ``tokens`` was right


class MemoryRateLimiter:
    """Token buckets in this process's memory.

    ``clock`` (monotonic seconds) and ``sleep`` are injectable so tests need not wait.
    The reservation is computed under a lock without awaiting, so any number of
    coroutines (or threads, each with its own loop) get distinct slots in arrival order.
    """

    def __init__(
        self, *, clock: MonotonicClock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str, *, rate: float, burst: float, max_wait: float) -> float:
        """Reserve a token without sleeping; return the seconds until it is due.

        Raise ``RateLimitExceeded`` (reserving nothing) when that exceeds ``max_wait``.
        """
        _check(rate, burst, max_wait)
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                tokens, stamp = float(burst), now
            else:
                # a clock that steps back must not add tokens, nor take them away
                elapsed = max(0.0, now - bucket.stamp)
                tokens = min(float(burst), bucket.tokens + elapsed * rate)
                stamp = max(now, bucket.stamp)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            if wait > max_wait:
                raise RateLimitExceeded(wait, key=key)
            self._buckets[key] = _Bucket(tokens - 1, stamp)
            return wait

    async def acquire(self, key: str, *, rate: float, burst: float, max_wait: float) -> float:
        """Reserve one token of ``key`` and sleep until it is due (see ``RateLimiter``)."""
        wait = self.reserve(key, rate=rate, burst=burst, max_wait=max_wait)
        if wait > 0:
            await self._sleep(wait)
        return wait

    async def aclose(self) -> None:
        """Nothing to release."""


# One atomic step on Redis's own clock, so the processes' clocks do not matter.
# Numbers go back as strings: Redis would truncate a Lua number to an integer.
_ACQUIRE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
ts = math.max(ts, now)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
end
if wait > max_wait then
  return {0, string.format('%.17g', wait)}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
  'ts', string.format('%.6f', ts))
-- an idle bucket is full once it has refilled; a missing one is full as well
redis.call('PEXPIRE', KEYS[1], math.ceil(((burst - tokens) / rate + 1) * 1000))
return {1, string.format('%.17g', wait)}
"""


class RedisRateLimiter:
    """Token buckets in Redis, shared by every process that uses the same server.

    Each acquisition is one Lua script (EVALSHA, loaded again on NOSCRIPT) that reads
    Redis's ``TIME``, refills the bucket (a hash of ``tokens`` and ``ts`` under
    ``prefix + key``), reserves a token and returns the wait. The caller then sleeps
    locally. Idle buckets expire a little after they would be full again.

    ``redis`` is a URL (the limiter then owns the client: short timeouts, no retries,
    closed by ``aclose``) or an existing ``redis.asyncio.Redis`` that its owner closes.

    When Redis is unreachable or answers with an error, the call is limited by a local
    ``MemoryRateLimiter`` instead (so each process applies the whole limit on its own
    for the duration), a warning is logged at most once per ``warn_interval`` and Redis
    is asked again after ``probe_interval`` seconds, so a dead server costs at most one
    timeout per interval rather than one per send.
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        prefix: str = "tidings:ratelimit:",
        timeout: float = 0.5,
        probe_interval: float = 1.0,
        warn_interval: float = 60.0,
        fallback: MemoryRateLimiter | None = None,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if isinstance(redis, str):
            self._redis = Redis.from_url(
                redis,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                retry=Retry(NoBackoff(), 0),  # a retry would only double the stall
            )
            self._owns_client = True
        else:
            self._redis = redis
            self._owns_client = False
        self._script = self._redis.register_script(_ACQUIRE_LUA)
        self.prefix = prefix
        self._probe_interval = probe_interval
        self._warn_interval = warn_interval
        self._fallback = fallback or MemoryRateLimiter(sleep=sleep)
        self._clock = clock
        self._sleep = sleep
        self._down_until: float | None = None
        self._warned_at: float | None = None

    async def acquire(self, key: str, *, rate: float, burst: float, max_wait: float) -> float:
        """Reserve one token of ``key`` and sleep until it is due (see ``RateLimiter``)."""
        _check(rate, burst, max_wait)
        if self._down_until is not None and self._clock() < self._down_until:
            return await self._fallback.acquire(key, rate=rate, burst=burst, max_wait=max_wait)
        try:
            granted, seconds = await self._script(
                keys=[self.prefix + key], args=[repr(rate), repr(burst), repr(max_wait)]
            )
        except (RedisError, OSError) as exc:  # OSError covers socket errors and timeouts
            self._went_down(exc)
            return await self._fallback.acquire(key, rate=rate, burst=burst, max_wait=max_wait)
        if self._down_until is not None:
            self._down_until = None
            logger.info("rate limiter: Redis answers again; buckets are shared once more")
        wait = float(seconds)
        if not int(granted):
            raise RateLimitExceeded(wait, key=key)
        if wait > 0:
            await self._sleep(wait)
        return wait

    def _went_down(self, exc: BaseException) -> None:
        now = self._clock()
        self._down_until = now + self._probe_interval
        if self._warned_at is None or now - self._warned_at >= self._warn_interval:
            self._warned_at = now
            logger.warning(
                "rate limiter: Redis failed (%s: %s); limiting in this process only",
                type(exc).__name__,
                exc,
            )

    async def aclose(self) -> None:
        """Close the Redis client if this limiter created it."""
        if self._owns_client:
            await self._redis.aclose()
