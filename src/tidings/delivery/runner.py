"""The embedded runner: asyncio tasks in the API process that carry deliveries.

``dispatch`` only queues ids; the rows are the truth. The sweeper hands over rows
nobody carried (a crash between commit and hand-over, retries, scheduled sends,
abandoned claims) and topic sends nobody expanded, so a restart loses nothing. The
calendar loop runs what `tidings beat` runs in distributed mode (retention).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable

from tidings.context import AppContext, Due
from tidings.delivery import service
from tidings.kit.metrics import RUNNER_QUEUE
from tidings.ops.retention import purge_expired
from tidings.preference import digests
from tidings.send import expansion

log = logging.getLogger(__name__)

MAX_SWEEP_BACKOFF = 30.0
# embedded, the calendar jobs that `tidings beat` drives in distributed mode run here
CALENDAR_INTERVAL = 3600.0


class EmbeddedRunner:
    def __init__(
        self,
        ctx: AppContext,
        *,
        batches: int = 4,
        shutdown_grace: float = 10.0,
        calendar_interval: float = CALENDAR_INTERVAL,
    ) -> None:
        self._ctx = ctx
        self._calendar_interval = calendar_interval
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._expansions: asyncio.Queue[str] = asyncio.Queue()
        self._batches = batches
        self._grace = shutdown_grace
        self._loops: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[object]] = set()

    def dispatch(self, deliveries: list[Due]) -> None:
        for delivery_id, _channel in deliveries:
            self._queue.put_nowait(delivery_id)
        RUNNER_QUEUE.set(self._queue.qsize())

    def expand(self, send_ids: list[str]) -> None:
        for send_id in send_ids:
            self._expansions.put_nowait(send_id)

    async def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._consume(), name=f"tidings-runner-{i}")
            for i in range(self._batches)
        ]
        self._loops.append(asyncio.create_task(self._expand(), name="tidings-expander"))
        self._loops.append(asyncio.create_task(self._sweep(), name="tidings-sweeper"))
        self._loops.append(asyncio.create_task(self._calendar(), name="tidings-calendar"))

    async def stop(self) -> None:
        """Stop taking work; let batches in flight finish for a moment, then cancel them.

        A batch cut short is not lost: its rows are retried when their lease ends.
        """
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops = []
        if self._inflight:
            _done, pending = await asyncio.wait(self._inflight, timeout=self._grace)
            for work in pending:
                work.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self, work: Awaitable[object]) -> object:
        # shielded: cancelling a loop during shutdown does not cut a send in half
        task = asyncio.ensure_future(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    async def _consume(self) -> None:
        while True:
            ids = [await self._queue.get()]
            while len(ids) < service.MAX_BATCH and not self._queue.empty():
                ids.append(self._queue.get_nowait())
            RUNNER_QUEUE.set(self._queue.qsize())
            try:
                await self._run(service.process(self._ctx, ids))
            except asyncio.CancelledError:
                raise
            except Exception:
                # the rows stay due; the sweeper brings them back
                log.exception("delivery batch failed", extra={"size": len(ids)})

    async def _expand(self) -> None:
        while True:
            send_id = await self._expansions.get()
            try:
                await self._run(expansion.expand(self._ctx, send_id))
            except asyncio.CancelledError:
                raise
            except Exception:
                # the send stays unexpanded; the sweeper retries once the lease ends
                log.exception("topic expansion failed", extra={"send_id": send_id})

    async def _sweep(self) -> None:
        interval = self._ctx.settings.sweep_interval_seconds
        delay = interval
        while True:
            try:
                for send_id in await expansion.unexpanded(self._ctx):
                    self._expansions.put_nowait(send_id)
                await self._run(digests.build_due(self._ctx))
                ids = await service.due(self._ctx)
                delay = interval
                if ids and await self._run(service.process(self._ctx, ids)):
                    continue  # more may be due; look again at once
            except asyncio.CancelledError:
                raise
            except Exception:
                # e.g. the database is down: say so, and look again less often
                log.exception("outbox sweep failed")
                delay = min(delay * 2, MAX_SWEEP_BACKOFF)
            await asyncio.sleep(delay)

    async def _calendar(self) -> None:
        """Retention, once an interval (the purge is idempotent: running late is harmless)."""
        while True:
            await asyncio.sleep(self._calendar_interval)
            try:
                await self._run(purge_expired(self._ctx))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention purge failed")
