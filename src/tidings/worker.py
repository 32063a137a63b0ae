"""Distributed mode: the Celery app, each worker process's event loop and context, and
the outbox sweeper that every worker runs under a database lease.

Recovery never depends on `tidings beat`: whichever worker holds the sweeper lease
re-publishes expired claims, pending rows nobody carried, due scheduled rows and topic
sends nobody expanded. Beat only drives calendar jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from celery import Celery, signals
from celery.schedules import crontab
from kombu import Queue

from tidings.bootstrap import prepare_for_fork, service_context
from tidings.channels.registry import ProviderRegistry
from tidings.config import Settings, load_settings
from tidings.context import AppContext
from tidings.distributed import (
    CHANNELS,
    DEFAULT_QUEUE,
    CeleryDispatcher,
    chunks_by_queue,
    queue_for,
)
from tidings.kit import heap
from tidings.kit.logging import configure_logging
from tidings.realtime.hub import MemoryHub

log = logging.getLogger(__name__)
T = TypeVar("T")

QUEUES = (DEFAULT_QUEUE, *(queue_for(c) for c in CHANNELS))
SWEEPER_LEASE = "outbox-sweeper"


def make_celery(settings: Settings) -> Celery:
    app = Celery(
        "tidings",
        broker=settings.broker_url or "memory://",
        include=[
            "tidings.delivery.tasks",
            "tidings.send.tasks",
            "tidings.ops.tasks",
            "tidings.preference.tasks",
        ],
    )
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=DEFAULT_QUEUE,
        task_queues=[Queue(name) for name in QUEUES],
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        broker_transport_options={"visibility_timeout": 3600, "socket_connect_timeout": 2},
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # for Flower
        beat_schedule={
            "retention": {"task": "ops.retention", "schedule": crontab(hour=3, minute=17)},
            "digests": {"task": "digest.build", "schedule": crontab()},  # every minute
        },
        timezone="UTC",
    )
    return app


settings = load_settings()
celery_app = make_celery(settings)


class _Runtime:
    """One event loop and one AppContext per worker process, created after the fork."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._stack = contextlib.AsyncExitStack()
        self.ctx: AppContext = self.loop.run_until_complete(self._open())

    async def _open(self) -> AppContext:
        ctx = await self._stack.enter_async_context(service_context(settings))
        ctx.dispatcher = CeleryDispatcher(settings, app=celery_app)
        return ctx

    def close(self) -> None:
        self.loop.run_until_complete(self._stack.aclose())
        self.loop.close()


_runtime: _Runtime | None = None


def run(work: Callable[[AppContext], Awaitable[T]]) -> T:
    """Run ``work(ctx)`` to completion on this process's loop (what every task does)."""
    global _runtime
    if _runtime is None:
        _runtime = _Runtime()
    return _runtime.loop.run_until_complete(work(_runtime.ctx))


@signals.worker_init.connect
def _prepare(**_: Any) -> None:
    # in the parent, before the pool forks: the children inherit the loaded modules
    prepare_for_fork(settings)
    heap.settle()


@signals.worker_process_init.connect
def _process_init(**_: Any) -> None:
    # never at import time: the parent forks children, and engines and loops do not
    # survive a fork
    global _runtime
    _runtime = _Runtime()


@signals.worker_process_shutdown.connect
def _process_shutdown(**_: Any) -> None:
    global _runtime
    if _runtime is not None:
        with contextlib.suppress(Exception):
            _runtime.close()
        _runtime = None


@signals.setup_logging.connect
def _logging(**_: Any) -> None:
    configure_logging(settings.log_level, settings.log_format)


class Sweeper(threading.Thread):
    """Runs in every worker's main process; only the lease holder sweeps."""

    def __init__(self, interval: float | None = None) -> None:
        super().__init__(name="tidings-sweeper", daemon=True)
        self.interval = interval or max(settings.sweep_interval_seconds, 1.0)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.stopping = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from tidings.delivery import service
        from tidings.preference import digests
        from tidings.send import expansion

        dispatcher = CeleryDispatcher(settings, app=celery_app)
        context = service_context(settings, providers=ProviderRegistry({}), hub=MemoryHub())
        async with context as ctx:
            while not self.stopping.is_set():
                try:
                    if await service.hold_lease(
                        ctx, SWEEPER_LEASE, self.holder, ttl=self.interval * 5
                    ):
                        due = await service.due_for_workers(ctx)
                        for queue, ids in chunks_by_queue(due):
                            dispatcher.publish_now("delivery.process", ids, queue)
                        for send_id in await expansion.unexpanded(ctx):
                            dispatcher.publish_now("send.expand", send_id, DEFAULT_QUEUE)
                        if await digests.has_due(ctx):
                            dispatcher.publish_now("digest.build", None, DEFAULT_QUEUE)
                except Exception:
                    log.exception("outbox sweep failed")
                await asyncio.to_thread(self.stopping.wait, self.interval)


_sweeper: Sweeper | None = None


@signals.worker_ready.connect
def _start_sweeper(**_: Any) -> None:
    global _sweeper
    _sweeper = Sweeper()
    _sweeper.start()


@signals.worker_shutdown.connect
def _stop_sweeper(**_: Any) -> None:
    if _sweeper is not None:
        _sweeper.stopping.set()
