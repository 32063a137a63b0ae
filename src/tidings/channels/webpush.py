"""Browser Web Push: RFC 8291 payload encryption and RFC 8292 (VAPID) authorization.

The message is encrypted with http_ece (content coding ``aes128gcm``) and POSTed with
the application's shared ``httpx.AsyncClient``; pywebpush's requests/aiohttp path is
not used, so push shares the connection pool, timeouts and outbound-target checks of
every other outbound HTTP call.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import http_ece  # type: ignore[import-untyped]
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.channels.base import (
    OutboundMessage,
    PermanentSendError,
    PushSubscription,
    RetryableSendError,
    SendError,
    SendResult,
    TargetRefused,
)
from tidings.config import ConfigError

# RFC 8291 section 4: one 4096-byte record holds 86 bytes of header (salt, record size,
# key id length, the 65-byte server key), a 16-byte tag and a 1-byte delimiter.
RECORD_SIZE = 4096
MAX_PLAINTEXT_BYTES = 3993
# RFC 8292 allows 24 h; some push services refuse more than 12 h, and clocks drift.
VAPID_TOKEN_SECONDS = 12 * 3600 - 60
# A cached header is only reused while it stays valid for a while longer than any
# request can take, so a push service never sees a token that expired in flight.
VAPID_MIN_REMAINING_SECONDS = 3600
URGENCY = {"low": "low", "normal": "normal", "high": "high", "urgent": "high"}

_ELLIPSIS = "\u2026"
_MAX_CACHED_AUDIENCES = 64  # push services are few; endpoints are user-supplied
_MAX_ERROR_TEXT = 200
_MAX_READ_BYTES = 4096  # an endpoint comes from a browser: never read all it sends
_MAX_MESSAGE_ID = 255  # the width of deliveries.provider_message_id


def generate_vapid_private_key() -> str:
    """Return a new P-256 private key as base64url of its raw 32-byte scalar (no padding).

    This is the form web-push tools print and ``TIDINGS_VAPID_PRIVATE_KEY`` takes.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    return _b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))


def load_vapid_private_key(value: str) -> ec.EllipticCurvePrivateKey:
    """Load a VAPID private key from base64url of the raw 32-byte scalar or from PEM.

    Raises ValueError, naming the accepted forms, for anything else (including keys on
    curves other than P-256).
    """
    text = value.strip()
    if text.startswith("-----BEGIN"):
        # environment variables often carry a PEM with its line breaks escaped
        pem = text.replace("\\n", "\n").encode("ascii", "replace")
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"the VAPID private key is not a readable PEM key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise ValueError("the VAPID private key must be a P-256 (prime256v1) EC key")
        return key
    try:
        raw = _b64url_decode(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            "the VAPID private key must be base64url of the raw 32-byte P-256 key "
            "(as web-push tools print it) or a PEM private key"
        )
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError as exc:
        raise ValueError("the VAPID private key is not a valid P-256 scalar") from exc


def vapid_public_key(private: ec.EllipticCurvePrivateKey | str) -> str:
    """Return the public key browsers need (``applicationServerKey``): base64url, no
    padding, of the 65-byte uncompressed point. Accepts a key or a string for
    ``load_vapid_private_key``."""
    key = load_vapid_private_key(private) if isinstance(private, str) else private
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url_encode(point)


def build_payload(message: OutboundMessage, *, limit: int = MAX_PLAINTEXT_BYTES) -> bytes:
    """Return the UTF-8 JSON plaintext for ``message``, at most ``limit`` bytes.

    The body is shortened first (ending in an ellipsis), then the title. Cuts fall
    between characters and are measured on the encoded JSON, so escapes count. Raises
    PermanentSendError when even an empty title and body do not fit.
    """
    notification_id = message.data.get("notification_id")
    fields: dict[str, Any] = {
        "title": message.title,
        "body": message.body,
        "url": message.url,
        "notification_id": notification_id,
        "category": message.category,
        "priority": message.priority,
        "tag": message.data.get("tag") or notification_id,
    }
    payload = _dump(fields)
    for key in ("body", "title"):
        if len(payload) <= limit:
            return payload
        payload = _shorten(fields, key, limit)
    if len(payload) <= limit:
        return payload
    raise PermanentSendError(
        f"the push payload needs {len(payload)} bytes even without title and body (limit {limit})",
        code="payload_too_large",
    )


def encrypt_payload(plaintext: bytes, subscription: PushSubscription) -> bytes:
    """Encrypt ``plaintext`` for ``subscription`` (RFC 8291, ``aes128gcm``).

    Every call uses a fresh server ECDH key and a random 16-byte salt, as the RFC
    requires. Raises PermanentSendError (address rejected) for unusable subscription keys.
    """
    receiver, auth_secret = _subscription_keys(subscription)
    return bytes(
        http_ece.encrypt(
            plaintext,
            salt=os.urandom(16),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=receiver,
            auth_secret=auth_secret,
            version="aes128gcm",
            rs=RECORD_SIZE,
        )
    )


def endpoint_origin(endpoint: str) -> str:
    """Return ``scheme://host[:port]`` of a push endpoint (the VAPID ``aud``); the port
    only when it is not the scheme's default. Raises ValueError for non-HTTP(S) URLs."""
    try:
        url = httpx.URL(endpoint)
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid push endpoint: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise ValueError("a push endpoint must be an absolute http(s) URL")
    host = url.raw_host.decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    # httpx.URL.port is None when the URL names the scheme's default port
    return f"{url.scheme}://{host}" + (f":{url.port}" if url.port is not None else "")


@dataclass(frozen=True, slots=True)
class _SignedHeader:
    value: str
    expires_at: int


class WebPushProvider:
    """Send Web Push messages to browser subscriptions (``message.push``).

    The VAPID ``Authorization`` header is signed once per push-service origin and reused
    until less than ``VAPID_MIN_REMAINING_SECONDS`` of its validity is left. Answers map
    onto the channel port: 2xx is sent (``provider_message_id`` is the ``Location``);
    404 and 410 mean the subscription is gone (``address_rejected``); 408, 429 and 5xx
    are retryable with the ``Retry-After`` delay; other 4xx fail the message; transport
    errors are retryable; a refused target (see ``TargetRefused``) fails permanently.
    """

    channel = "push"

    def __init__(
        self,
        *,
        private_key: str,
        subject: str,
        client: httpx.AsyncClient,
        name: str = "webpush",
        clock: Callable[[], float] = time.time,
        ttl: int = 86400,
    ) -> None:
        try:
            self._key = load_vapid_private_key(private_key)
        except ValueError as exc:
            raise ConfigError(f"TIDINGS_VAPID_PRIVATE_KEY: {exc}") from exc
        if not subject.startswith(("mailto:", "https:")):
            raise ConfigError("TIDINGS_VAPID_SUBJECT must be a mailto: or https: URL")
        if ttl < 0:
            raise ConfigError("the Web Push TTL must not be negative")
        self.name = name
        self.public_key = vapid_public_key(self._key)
        self._subject = subject
        self._client = client
        self._clock = clock
        self._ttl = ttl
        self._signed: dict[str, _SignedHeader] = {}

    async def send(self, message: OutboundMessage) -> SendResult:
        """Encrypt and POST ``message`` to its subscription; see the class docstring."""
        subscription = message.push
        if subscription is None:
            raise PermanentSendError("the message has no push subscription", code="no_subscription")
        try:
            audience = endpoint_origin(subscription.endpoint)
        except ValueError as exc:
            raise PermanentSendError(
                str(exc), code="invalid_subscription", address_rejected=True
            ) from exc
        body = encrypt_payload(build_payload(message), subscription)
        headers = {
            "TTL": str(self._ttl),
            "Urgency": URGENCY.get(message.priority, "normal"),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": self.authorization(audience),
        }
        try:
            async with self._client.stream(
                "POST", subscription.endpoint, content=body, headers=headers, follow_redirects=False
            ) as response:
                text = await _read_text(response)
        except TargetRefused as exc:
            raise PermanentSendError(str(exc), code="target_refused") from exc
        except httpx.RequestError as exc:
            raise _request_error(exc) from exc
        status = response.status_code
        if 200 <= status < 300:
            location = response.headers.get("Location")
            return SendResult(
                provider=self.name,
                provider_message_id=location[:_MAX_MESSAGE_ID] if location else None,
                info={"status": status},
            )
        raise self._answer_error(status, text, response.headers.get("Retry-After"))

    async def aclose(self) -> None:
        """Forget the signed headers; the HTTP client belongs to the caller and stays open."""
        self._signed.clear()

    def authorization(self, audience: str) -> str:
        """Return ``vapid t=<JWT>, k=<public key>`` for ``audience`` (an origin), cached."""
        now = self._clock()
        cached = self._signed.get(audience)
        if cached is not None and cached.expires_at - now >= VAPID_MIN_REMAINING_SECONDS:
            return cached.value
        expires_at = math.floor(now) + VAPID_TOKEN_SECONDS
        # claims in sorted order: some push services are said to insist on it
        claims = {"aud": audience, "exp": expires_at, "sub": self._subject}
        token = jwt.encode(claims, self._key, algorithm="ES256", headers={"typ": "JWT"})
        signed = _SignedHeader(f"vapid t={token}, k={self.public_key}", expires_at)
        if audience not in self._signed and len(self._signed) >= _MAX_CACHED_AUDIENCES:
            self._signed.pop(next(iter(self._signed)))
        self._signed[audience] = signed
        return signed.value

    def _answer_error(self, status: int, text: str, retry_after: str | None) -> SendError:
        detail = " ".join(text.split())[:_MAX_ERROR_TEXT]
        described = f"push service answered {status}" + (f": {detail}" if detail else "")
        if status in (404, 410):
            return PermanentSendError(
                f"{described} (the subscription is gone)", code=status, address_rejected=True
            )
        if status in (408, 429) or status >= 500:
            return RetryableSendError(
                described, code=status, retry_after=parse_retry_after(retry_after, self._clock())
            )
        # other 4xx: a bad VAPID key (401/403), a malformed request (400), too large
        # (413); the same request would get the same answer. 3xx: redirects not followed.
        return PermanentSendError(described, code=status)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Return the delay a ``Retry-After`` value (delta-seconds or an HTTP-date) asks for,
    in seconds from ``now``; 0 for a past date, None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # RFC 9110 dates are GMT; a date without a zone is not one of them
    return max(0.0, when.timestamp() - now)


def _request_error(exc: httpx.RequestError) -> SendError:
    # A transport that checks targets may raise TargetRefused from inside httpcore,
    # where httpx wraps it; the refusal is then the cause of the request error.
    cause: BaseException | None = exc
    for _ in range(8):  # bounded: a hand-made exception chain may loop
        if cause is None:
            break
        if isinstance(cause, TargetRefused):
            return PermanentSendError(str(cause), code="target_refused")
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return RetryableSendError(f"push service timeout: {exc!r}", code="timeout")
    return RetryableSendError(f"push request failed: {exc!r}", code="connection")


async def _read_text(response: httpx.Response) -> str:
    """Read at most ``_MAX_READ_BYTES`` of the answer; the status is what matters, and a
    body that fails to arrive does not change it."""
    data = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) >= _MAX_READ_BYTES:
                break
    except httpx.HTTPError:
        pass
    # error texts are ASCII in practice; another charset only garbles the log line
    return bytes(data[:_MAX_READ_BYTES]).decode("utf-8", "replace")


def _subscription_keys(subscription: PushSubscription) -> tuple[ec.EllipticCurvePublicKey, bytes]:
    try:
        receiver = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), _b64url_decode(subscription.p256dh)
        )
        auth_secret = _b64url_decode(subscription.auth)
        if len(auth_secret) != 16:
            raise ValueError("the auth secret is not 16 bytes")
    except ValueError as exc:
        # no later send can work either: the caller should drop the subscription
        raise PermanentSendError(
            f"unusable push subscription keys: {exc}",
            code="invalid_subscription",
            address_rejected=True,
        ) from exc
    return receiver, auth_secret


def _shorten(fields: dict[str, Any], key: str, limit: int) -> bytes:
    """Shorten ``fields[key]`` to the longest prefix (plus an ellipsis) that lets the
    JSON fit in ``limit`` bytes, or to ``""``; return the resulting JSON."""
    # every character takes at least one byte: a longer prefix can never fit
    value = str(fields[key] or "")[:limit]

    def encoded(length: int) -> bytes:
        fields[key] = value[:length] + _ELLIPSIS if length else ""
        return _dump(fields)

    # the size grows with the prefix length: find the longest prefix that fits
    low, high = 0, len(value) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if len(encoded(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return encoded(max(low, 0))


def _dump(fields: dict[str, Any]) -> bytes:
    # ensure_ascii=False: "é" costs 2 bytes instead of the 6 of "\u00e9"; lone
    # surrogates (which no UTF-8 can carry) become "?"
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.encode("utf-8", "replace")


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(value: str) -> bytes:
    """Decode base64url with or without padding; browsers omit it, some clients don't,
    and a few send the standard alphabet. Raises ValueError on anything else."""
    text = value.strip().rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
