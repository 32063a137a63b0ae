"""Prometheus metrics of the service (one registry per process)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

HTTP_REQUESTS = Counter(
    "tidings_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "tidings_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DELIVERIES = Counter(
    "tidings_deliveries_total", "Delivery attempts by outcome", ["channel", "status"]
)
DELIVERY_LATENCY = Histogram(
    "tidings_delivery_send_seconds",
    "Time a provider took to send",
    ["channel", "provider"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RUNNER_QUEUE = Gauge(
    "tidings_runner_queue_depth",
    "Delivery ids waiting in the embedded runner",
    multiprocess_mode="livesum",
)
SENDS = Counter("tidings_sends_total", "Sends accepted", ["kind"])


def exposition() -> tuple[bytes, str]:
    """The metrics of this process, or of all of them when several share a directory
    (``PROMETHEUS_MULTIPROC_DIR``, set by ``tidings serve --workers N``)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
