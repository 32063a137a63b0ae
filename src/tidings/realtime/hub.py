"""Live fan-out: hands committed events to the sockets of their user, in this process or
(with Redis) in any process. Losing a message here loses nothing: the event log is the
truth, and a client that reconnects with ``since`` gets what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from typing import Any, cast

log = logging.getLogger(__name__)

Frame = dict[str, Any]
Key = tuple[str, str]


class Subscription:
    """One socket's inbox of frames; a socket too slow to keep up is told to go."""

    def __init__(self, hub: MemoryHub, key: Key, maxsize: int) -> None:
        self.key = key
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(maxsize)
        self.overflowed = asyncio.Event()
        # set once frames published from now on are sure to arrive (for Redis: once the
        # SUBSCRIBE went through); a socket reads the event log only after that
        self.ready = asyncio.Event()
        self._hub = hub

    def offer(self, frame: Frame) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed.set()

    def close(self) -> None:
        self._hub.unsubscribe(self)


class MemoryHub:
    """Fan-out inside one process (the embedded default)."""

    def __init__(self, *, queue_size: int = 256) -> None:
        self._subs: dict[Key, set[Subscription]] = defaultdict(set)
        self._queue_size = queue_size

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def subscribe(self, tenant: str, user: str) -> Subscription:
        sub = Subscription(self, (tenant, user), self._queue_size)
        self._subs[sub.key].add(sub)
        sub.ready.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.key]

    def publish(self, tenant: str, frames: list[tuple[str, Frame]]) -> None:
        """Hand committed frames over; never raises, never blocks."""
        self._deliver(tenant, frames)

    def _deliver(self, tenant: str, frames: list[tuple[str, Frame]]) -> None:
        for user, frame in frames:
            for sub in self._subs.get((tenant, user), ()):
                sub.offer(frame)

    @property
    def connections(self) -> int:
        return sum(len(s) for s in self._subs.values())


class RedisHub(MemoryHub):
    """Fan-out across processes through Redis pub/sub, one channel per user."""

    PREFIX = "tidings:live:"

    def __init__(self, url: str, *, queue_size: int = 256, publish_timeout: float = 1.0) -> None:
        super().__init__(queue_size=queue_size)
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._timeout = publish_timeout
        self._listener: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._changes: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._subscribed: set[str] = set()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="tidings-redis-hub")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        for task in list(self._pending):
            task.cancel()
        with contextlib.suppress(Exception):
            await cast(Any, self._pubsub).aclose()  # typed only in newer redis-py
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    def _channel(self, key: Key) -> str:
        return f"{self.PREFIX}{key[0]}:{key[1]}"

    def subscribe(self, tenant: str, user: str) -> Subscription:
        sub = super().subscribe(tenant, user)
        channel = self._channel(sub.key)
        if channel not in self._subscribed:
            sub.ready.clear()  # until the listener's SUBSCRIBE for it went through
            self._changes.put_nowait(("+", channel))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        super().unsubscribe(sub)
        if sub.key not in self._subs:
            self._changes.put_nowait(("-", self._channel(sub.key)))

    def publish(self, tenant: str, frames: list[tuple[str, Frame]]) -> None:
        by_user: dict[str, list[Frame]] = defaultdict(list)
        for user, frame in frames:
            by_user[user].append(frame)
        task = asyncio.create_task(self._publish(tenant, by_user))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, tenant: str, by_user: dict[str, list[Frame]]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for user, frames in by_user.items():
                        pipe.publish(self._channel((tenant, user)), json.dumps(frames))
                    await pipe.execute()
        except Exception as exc:  # clients catch up from the event log
            log.warning("live publish failed: %s", type(exc).__name__)

    async def _listen(self) -> None:
        while True:
            try:
                await self._apply_changes()
                if not self._subscribed:
                    await self._wait_for_change()
                    continue
                # short: new subscriptions wait for this loop to come round
                message = await self._pubsub.get_message(timeout=0.05)
                if message is not None:
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live listener: %s; reconnecting", type(exc).__name__)
                await asyncio.sleep(1)
                self._resubscribe_all()

    async def _wait_for_change(self) -> None:
        change = await self._changes.get()
        self._changes.put_nowait(change)

    async def _apply_changes(self) -> None:
        while not self._changes.empty():
            op, channel = self._changes.get_nowait()
            if op == "+" and channel not in self._subscribed:
                await self._pubsub.subscribe(channel)
                self._subscribed.add(channel)
            if op == "+":
                key = tuple(channel.removeprefix(self.PREFIX).split(":", 1))
                for sub in self._subs.get((key[0], key[1]), ()):
                    sub.ready.set()
            elif op == "-" and channel in self._subscribed:
                user_key = channel.removeprefix(self.PREFIX).split(":", 1)
                if (user_key[0], user_key[1]) not in self._subs:
                    await self._pubsub.unsubscribe(channel)
                    self._subscribed.discard(channel)

    def _resubscribe_all(self) -> None:
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        channels, self._subscribed = self._subscribed, set()
        for channel in channels:
            self._changes.put_nowait(("+", channel))

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        tenant, user = channel.removeprefix(self.PREFIX).split(":", 1)
        try:
            frames = json.loads(message["data"])
        except (TypeError, ValueError):
            return
        self._deliver(tenant, [(user, frame) for frame in frames])
