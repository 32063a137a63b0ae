"""The embedded runner: an asyncio task in the API process that carries deliveries.

``dispatch`` only queues ids; the rows are the truth. The sweeper hands over rows
nobody carried (a crash between commit and hand-over, retries, scheduled sends,
abandoned claims), so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tidings.context import AppContext
from tidings.delivery import service
from tidings.kit.metrics import RUNNER_QUEUE
from tidings.send import expansion

log = logging.getLogger(__name__)


class EmbeddedRunner:
    def __init__(self, ctx: AppContext, *, batches: int = 4) -> None:
        self._ctx = ctx
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._expansions: asyncio.Queue[str] = asyncio.Queue()
        self._batches = batches
        self._tasks: list[asyncio.Task[None]] = []

    def dispatch(self, delivery_ids: list[str]) -> None:
        for delivery_id in delivery_ids:
            self._queue.put_nowait(delivery_id)
        RUNNER_QUEUE.set(self._queue.qsize())

    def expand(self, send_ids: list[str]) -> None:
        for send_id in send_ids:
            self._expansions.put_nowait(send_id)

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._consume(), name=f"tidings-runner-{i}")
            for i in range(self._batches)
        ]
        self._tasks.append(asyncio.create_task(self._expand(), name="tidings-expander"))
        self._tasks.append(asyncio.create_task(self._sweep(), name="tidings-sweeper"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _consume(self) -> None:
        while True:
            ids = [await self._queue.get()]
            while len(ids) < service.MAX_BATCH and not self._queue.empty():
                ids.append(self._queue.get_nowait())
            RUNNER_QUEUE.set(self._queue.qsize())
            try:
                await service.process(self._ctx, ids)
            except asyncio.CancelledError:
                raise
            except Exception:
                # the rows stay due; the sweeper brings them back
                log.exception("delivery batch failed", extra={"size": len(ids)})

    async def _expand(self) -> None:
        while True:
            send_id = await self._expansions.get()
            try:
                await expansion.expand(self._ctx, send_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                # the send stays unexpanded; the sweeper retries once the lease ends
                log.exception("topic expansion failed", extra={"send_id": send_id})

    async def _sweep(self) -> None:
        interval = self._ctx.settings.sweep_interval_seconds
        while True:
            try:
                for send_id in await expansion.unexpanded(self._ctx):
                    self._expansions.put_nowait(send_id)
                ids = await service.due(self._ctx)
                if ids:
                    await service.process(self._ctx, ids)
                    continue  # more may be due; look again at once
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox sweep failed")
            await asyncio.sleep(interval)
