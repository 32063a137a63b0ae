"""Digest building in distributed mode: published by the worker sweeper when a period is
due, and by `tidings beat` every minute (safe to run twice: digests are unique)."""

from __future__ import annotations

from tidings.preference.digests import build_due
from tidings.worker import celery_app, run


@celery_app.task(name="digest.build")
def build(_signal: object = None) -> int:
    """``_signal``: what the sweeper's publish carries (nothing); beat sends no argument."""
    return run(build_due)
