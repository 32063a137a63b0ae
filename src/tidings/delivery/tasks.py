"""Celery tasks: thin wrappers that run the same async service function as the
embedded runner, on the worker process's own event loop."""

from __future__ import annotations

from tidings.delivery import service
from tidings.worker import celery_app, run


@celery_app.task(name="delivery.process")
def process(delivery_ids: list[str]) -> int:
    """Claim and send the due deliveries among ``delivery_ids`` (at most 100)."""
    ids = [str(i) for i in delivery_ids][: service.MAX_BATCH]
    return run(lambda ctx: service.process(ctx, ids))
