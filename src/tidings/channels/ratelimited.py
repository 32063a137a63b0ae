"""A provider wrapper that keeps sends under the provider's own rate limit.

A burst is smoothed: each send waits for its turn in the provider's token bucket (shared
across processes when the limiter is Redis-backed). A send whose turn is too far away is
not attempted; it fails with a retryable error carrying the delay, so the delivery engine
schedules it again instead of holding a worker.
"""

from __future__ import annotations

from typing import Any

from tidings.channels.base import OutboundMessage, Provider, RetryableSendError, SendResult
from tidings.kit.ratelimit import RateLimiter, RateLimitExceeded


class RateLimitedProvider:
    """Wrap ``inner`` so it sends at most ``rate`` messages per second, ``burst`` at once.

    The bucket is ``provider:<inner.name>``: every wrapper of a provider of that name
    sharing ``limiter`` draws from it. Attributes the wrapper does not define are read
    from ``inner``. ``aclose`` closes ``inner`` only; the limiter's owner closes it.
    """

    def __init__(
        self,
        inner: Provider,
        limiter: RateLimiter,
        *,
        rate: float,
        burst: float,
        max_wait: float = 30.0,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate!r}")
        if not burst >= 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        if not max_wait >= 0:
            raise ValueError(f"max_wait must not be negative, not {max_wait!r}")
        self.inner = inner
        self.limiter = limiter
        self.name = inner.name
        self.channel = inner.channel
        self.rate = rate
        self.burst = burst
        self.max_wait = max_wait
        self.key = f"provider:{inner.name}"

    async def send(self, message: OutboundMessage) -> SendResult:
        """Wait for a token, then send through the inner provider.

        Raise ``RetryableSendError`` (code ``rate_limited``) when the wait would exceed
        ``max_wait``; the inner provider's own errors pass through unchanged.
        """
        try:
            await self.limiter.acquire(
                self.key, rate=self.rate, burst=self.burst, max_wait=self.max_wait
            )
        except RateLimitExceeded as exc:
            raise RetryableSendError(
                f"provider {self.name!r} is at its rate limit of {self.rate:g}/s; "
                f"a slot is free in {exc.retry_after:.2f}s",
                code="rate_limited",
                retry_after=exc.retry_after,
            ) from exc
        return await self.inner.send(message)

    async def aclose(self) -> None:
        """Close the inner provider (not the shared limiter)."""
        await self.inner.aclose()

    def __getattr__(self, attr: str) -> Any:
        # Only reached when normal lookup fails. Read ``inner`` from __dict__ so a
        # half-built instance (copy, pickle) raises AttributeError instead of recursing.
        try:
            inner = self.__dict__["inner"]
        except KeyError:
            raise AttributeError(attr) from None
        return getattr(inner, attr)

    def __repr__(self) -> str:
        return f"RateLimitedProvider({self.inner!r}, rate={self.rate:g}, burst={self.burst:g})"
