"""Webhooks: an HMAC-signed JSON POST of one event to one tenant endpoint.

The body is ``{id, type, created_at, tenant, data}`` as compact UTF-8 JSON. The header
``Tidings-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`` carries one HMAC-SHA256 of
``"<t>." + body`` per active secret, so a receiver keeps verifying while a secret is
rotated. Receivers should compare in constant time and reject stale timestamps;
``verify_signature`` does both and is what Tidings' own tests use.

The provider posts with the shared ``httpx.AsyncClient``, which the application builds
on a ``GuardedTransport`` (see ``tidings.channels.outbound``) so that a tenant's URL
cannot reach internal addresses.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

from tidings.channels.base import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
    SendResult,
    TargetRefused,
    WebhookEvent,
)

__all__ = [
    "SIGNATURE_HEADER",
    "USER_AGENT",
    "WebhookProvider",
    "event_body",
    "sign_payload",
    "signature_header",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "Tidings-Signature"
USER_AGENT: Final = "Tidings-Webhooks/1"
# A receiver's answer only matters by its status; read a little of it for the error
# text, and enough of a normal one that the connection can go back to the pool.
_MAX_RESPONSE_BYTES: Final = 64 * 1024
_ERROR_SNIPPET_CHARS: Final = 200
# Per-operation timeouts come from the client; this bounds an endpoint that answers a
# byte at a time.
DEFAULT_DEADLINE_SECONDS: Final = 60.0


def sign_payload(secret: str, timestamp: int, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``"<timestamp>." + body`` keyed with ``secret``."""
    signed = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """Return the ``Tidings-Signature`` value: ``t=<timestamp>`` and one ``v1=`` per secret."""
    if not secrets:
        raise ValueError("a webhook signature needs at least one secret")
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={sign_payload(secret, timestamp, body)}" for secret in secrets)
    return ",".join(parts)


def verify_signature(
    header: str, body: bytes, secret: str, *, now: int, tolerance: int = 300
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of ``now``.

    Any one matching ``v1=`` suffices. A malformed header, a missing or repeated ``t=``
    or a timestamp further than ``tolerance`` from ``now`` (either way) fails.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return False
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    expected = sign_payload(secret, timestamp, body).encode("ascii")
    matched = False
    for candidate in candidates:
        # compare every candidate, so the time taken does not tell which one matched
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    return matched


def event_body(event: WebhookEvent) -> bytes:
    """Return the request body: compact UTF-8 JSON of ``{id, type, created_at, tenant, data}``."""
    document = {
        "id": event.id,
        "type": event.type,
        "created_at": event.created_at,
        "tenant": event.tenant,
        "data": event.data,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


class WebhookProvider:
    """POST webhook events to tenant endpoints (``message.target``), signed per endpoint.

    The answer maps onto the channel port: 2xx is sent; 408, 421, 429 and 5xx are
    retryable (honouring ``Retry-After`` in seconds or as an HTTP date); redirects are
    not followed and, like other 4xx answers, fail permanently; timeouts and transport
    errors are retryable; a target the outbound guard refuses fails permanently with
    code ``target_refused``. Error texts name the host only, since webhook URLs often
    carry tokens in their path or query.
    """

    channel = "webhook"

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        name: str = "webhook",
        clock: Callable[[], float] = time.time,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self.name = name
        self._client = client
        self._clock = clock
        self._deadline = deadline_seconds

    async def send(self, message: OutboundMessage) -> SendResult:
        """POST ``message.webhook`` to ``message.target``; see the class docstring for errors."""
        event = message.webhook
        if event is None:
            raise PermanentSendError("the message carries no webhook event", code="no_event")
        if not event.secrets:
            raise PermanentSendError("the webhook endpoint has no signing secret", code="no_secret")
        try:
            body = event_body(event)
        except (TypeError, ValueError) as exc:
            raise PermanentSendError(
                f"the webhook event is not JSON: {exc}", code="invalid_event"
            ) from exc
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(event.secrets, int(self._clock()), body),
            "Tidings-Event-Id": event.id,
            "Tidings-Event-Type": event.type,
            # the answer is only read for an error text: keep it short and uncompressed
            "Accept-Encoding": "identity",
        }
        host = _host_of(message.target)
        try:
            async with asyncio.timeout(self._deadline):
                status, response_headers, snippet = await self._post(message.target, body, headers)
        except TargetRefused as exc:
            raise PermanentSendError(str(exc), code="target_refused") from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise PermanentSendError(
                f"the webhook URL for {host} is not usable: {exc}", code="invalid_url"
            ) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise RetryableSendError(f"webhook to {host} timed out", code="timeout") from exc
        except httpx.TransportError as exc:
            raise RetryableSendError(
                f"webhook to {host} failed: {type(exc).__name__}: {exc}", code="connection"
            ) from exc
        if 200 <= status < 300:
            return SendResult(provider=self.name, provider_message_id=None, info={"status": status})
        raise self._status_error(host, status, response_headers, snippet)

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, httpx.Headers, str]:
        async with self._client.stream(
            "POST", url, content=body, headers=headers, follow_redirects=False
        ) as response:
            received = bytearray()
            async for chunk in response.aiter_raw():
                received += chunk
                if len(received) >= _MAX_RESPONSE_BYTES:
                    break  # closing an unread response drops its connection instead
            snippet = bytes(received[:1024]).decode("utf-8", "replace")
            return response.status_code, response.headers, snippet

    def _status_error(
        self, host: str, status: int, headers: httpx.Headers, snippet: str
    ) -> SendError:
        text = f"webhook endpoint {host} answered {status}"
        detail = " ".join(snippet.split())[:_ERROR_SNIPPET_CHARS]
        if detail:
            text = f"{text}: {detail}"
        # 421: the request reached a server that does not serve this name, which happens
        # when a kept-alive connection to a shared address is reused; a retry reconnects.
        if status in (408, 421, 429) or status >= 500:
            return RetryableSendError(
                text, code=status, retry_after=_retry_after(headers.get("retry-after"), self._clock)
            )
        if 300 <= status < 400:
            return PermanentSendError(f"{text} (redirects are not followed)", code=status)
        return PermanentSendError(text, code=status)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client is shared and closed by its owner."""


def _retry_after(value: str | None, clock: Callable[[], float]) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - clock())


def _host_of(url: str) -> str:
    try:
        return httpx.URL(url).host or "(no host)"
    except (httpx.InvalidURL, TypeError):
        return "(invalid URL)"
