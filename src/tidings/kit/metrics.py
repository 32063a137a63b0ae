"""Prometheus metrics of the service (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
RUNNER_QUEUE = Gauge("tidings_runner_queue_depth", "Delivery ids waiting in the embedded runner")
SENDS = Counter("tidings_sends_total", "Sends accepted", ["kind"])
