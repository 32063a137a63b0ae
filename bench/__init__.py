"""Tidings benchmarks: ``python -m bench`` (``make bench``) writes docs/benchmarks.md.

Each scenario is a module with ``NAME``, ``TITLE`` and ``async run(ws, opts)`` returning
a ``report.ScenarioResult``; ``SCENARIOS`` lists them in the order they run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench import (
    celery_drain,
    email,
    fanout,
    inbox,
    ingest,
    live_fanout,
    live_latency,
    push,
    sms,
)
from bench.harness import Options, Workspace
from bench.report import ScenarioResult


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    run: Callable[[Workspace, Options], Awaitable[ScenarioResult]]


SCENARIOS: dict[str, Scenario] = {
    module.NAME: Scenario(module.NAME, module.TITLE, module.run)
    for module in (ingest, fanout, inbox, email, push, sms, live_latency, live_fanout, celery_drain)
}

__all__ = ["SCENARIOS", "Scenario"]
