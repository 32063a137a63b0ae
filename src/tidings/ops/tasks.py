"""Calendar jobs run by `tidings beat` (safe to run twice)."""

from __future__ import annotations

from tidings.ops.retention import purge_expired
from tidings.worker import celery_app, run


@celery_app.task(name="ops.retention")
def retention() -> dict[str, int]:
    return run(purge_expired)
