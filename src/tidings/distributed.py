"""The API side of distributed mode: hand delivery ids to the broker after commit.

Publishing happens on a small thread pool with short timeouts and no retries, so a
broker outage never delays or fails a request; whatever is not published is found by
the workers' sweeper.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tidings.config import Settings
from tidings.context import Due

log = logging.getLogger(__name__)

CHANNELS = ("in_app", "email", "sms", "push", "webhook")
DEFAULT_QUEUE = "tidings.default"
CHUNK = 100


def queue_for(channel: str) -> str:
    """Each channel has its queue, so slow SMS never holds up in-app or e-mail."""
    return f"tidings.{channel}" if channel in CHANNELS else DEFAULT_QUEUE


def chunks_by_queue(deliveries: list[Due]) -> list[tuple[str, list[str]]]:
    """Group deliveries by their channel's queue, in tasks of at most CHUNK ids."""
    by_queue: dict[str, list[str]] = defaultdict(list)
    for delivery_id, channel in deliveries:
        by_queue[queue_for(channel)].append(delivery_id)
    return [
        (queue, ids[start : start + CHUNK])
        for queue, ids in by_queue.items()
        for start in range(0, len(ids), CHUNK)
    ]


class CeleryDispatcher:
    def __init__(self, settings: Settings, *, app: Any = None) -> None:
        if app is None:
            from tidings.worker import make_celery

            app = make_celery(settings)
        self._app = app
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tidings-publish")

    def dispatch(self, deliveries: list[Due]) -> None:
        for queue, ids in chunks_by_queue(deliveries):
            self._submit("delivery.process", ids, queue)

    def expand(self, send_ids: list[str]) -> None:
        for send_id in send_ids:
            self._submit("send.expand", send_id, DEFAULT_QUEUE)

    def publish_now(self, name: str, argument: Any, queue: str) -> bool:
        """Publish in the calling thread (workers and their sweeper)."""
        try:
            self._app.send_task(name, args=[argument], queue=queue, retry=False)
        except Exception as exc:  # the sweeper publishes it again later
            log.warning("publish to the broker failed: %s", type(exc).__name__)
            return False
        return True

    def _submit(self, name: str, argument: Any, queue: str) -> None:
        try:
            self._pool.submit(self.publish_now, name, argument, queue)
        except RuntimeError:  # shutting down
            log.warning("publish skipped during shutdown")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
