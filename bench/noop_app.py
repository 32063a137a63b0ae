"""A Celery app of the bench's own with one task that returns at once: the celery_drain
baseline. ``celery -A bench.noop_app worker -Q bench.noop``; the broker comes from
``BENCH_NOOP_BROKER`` (default: db 12 of the local Redis). Configured like Tidings'
worker app (JSON, late acks, prefetch 1, results ignored).
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

QUEUE = "bench.noop"

app = Celery("bench_noop", broker=os.environ.get("BENCH_NOOP_BROKER", "redis://127.0.0.1:6379/12"))
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=QUEUE,
    task_queues=[Queue(QUEUE)],
    broker_connection_retry_on_startup=True,
    broker_connection_timeout=2,
    broker_transport_options={"visibility_timeout": 3600, "socket_connect_timeout": 2},
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop(_index: int) -> None:
    return None
