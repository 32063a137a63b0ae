"""Celery task: expand a topic send in batches (the same function as embedded)."""

from __future__ import annotations

from tidings.send import expansion
from tidings.worker import celery_app, run


@celery_app.task(name="send.expand")
def expand(send_id: str) -> int:
    return run(lambda ctx: expansion.expand(ctx, str(send_id)))
