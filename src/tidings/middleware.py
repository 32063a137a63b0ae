"""ASGI middleware: request ids, body size limits, access log and HTTP metrics."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.errors import problem
from tidings.kit.ids import uuid7
from tidings.kit.logging import redact, request_id_var
from tidings.kit.metrics import HTTP_LATENCY, HTTP_REQUESTS

access_log = logging.getLogger("tidings.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class RequestContextMiddleware:
    """Sets the request id, enforces body size limits and writes the access log."""

    def __init__(
        self, app: ASGIApp, *, max_body: int, max_bulk_body: int, bulk_paths: tuple[str, ...]
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_bulk_body = max_bulk_body
        self.bulk_paths = bulk_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid7()
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            if scope["method"] in _BODY_METHODS:
                limit = self.max_bulk_body if scope["path"] in self.bulk_paths else self.max_body
                body = await _read_body(receive, headers, limit)
                if body is None:
                    await _too_large(send_wrapper, request_id, limit)
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            counted, timed = _series(scope["method"], template, status_holder["status"])
            counted.inc()
            timed.observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                query = scope.get("query_string", b"").decode("latin-1")
                path = scope["path"] + (f"?{query}" if query else "")
                access_log.info(
                    "%s %s %s",
                    scope["method"],
                    redact(path),
                    status_holder["status"],
                    extra={"status": status_holder["status"], "ms": round(elapsed * 1000, 2)},
                )
            request_id_var.reset(token)


# a request's metric series, by method, route template and status (a bounded set)
_SERIES: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _series(method: str, template: str, status: int) -> tuple[Counter, Histogram]:
    """The request counter and latency histogram of a request's labels (looking them up in
    the metrics took a lock and a label check on every request)."""
    key = (method, template, status)
    series = _SERIES.get(key)
    if series is None:
        series = _SERIES[key] = (
            HTTP_REQUESTS.labels(method, template, status),
            HTTP_LATENCY.labels(method, template),
        )
    return series


async def _read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes | None:
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, original: Receive) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()  # later reads wait for the real disconnect

    return receive


async def _too_large(send: Send, request_id: str, limit: int) -> None:
    body: dict[str, Any] = problem(
        413,
        "Content too large",
        f"the request body exceeds {limit} bytes",
        type_="https://tidings.dev/problems/content-too-large",
        instance=request_id,
    )
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
