"""Signed unsubscribe tokens: who (tenant, recipient), what (scope) and when issued.

A token is ``<payload>.<mac>``, both base64url: the payload is compact JSON
``[tenant, recipient, scope, issued unix seconds]`` and the mac an HMAC-SHA256 of it under
a key derived from ``TIDINGS_SECRET_KEY`` for this purpose only, so a cursor can never
pass for an unsubscribe token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

LIFETIME = timedelta(days=365)
_MAC_BYTES = 20


class InvalidToken(ValueError):
    """The token is malformed, forged, tampered with or expired."""


@dataclass(frozen=True, slots=True)
class UnsubscribeClaim:
    tenant: str
    recipient: str
    scope: str  # the e-mail's category
    issued_at: datetime


def _key(secret_key: str) -> bytes:
    return hashlib.sha256(b"tidings-unsubscribe:" + secret_key.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _mac(secret_key: str, payload: str) -> str:
    digest = hmac.new(_key(secret_key), payload.encode(), hashlib.sha256).digest()
    return _b64(digest[:_MAC_BYTES])


def issue(secret_key: str, *, tenant: str, recipient: str, scope: str, now: datetime) -> str:
    """A token opting ``recipient`` out of e-mail of category ``scope``."""
    body = json.dumps([tenant, recipient, scope, int(now.timestamp())], separators=(",", ":"))
    payload = _b64(body.encode())
    return f"{payload}.{_mac(secret_key, payload)}"


def read(secret_key: str, token: str, *, now: datetime) -> UnsubscribeClaim:
    """Check and decode ``token``; raises InvalidToken."""
    payload, _, mac = token.partition(".")
    if not payload or not mac or not token.isascii():
        raise InvalidToken("this unsubscribe link is malformed")
    if not hmac.compare_digest(mac, _mac(secret_key, payload)):
        raise InvalidToken("this unsubscribe link is not valid")
    try:
        fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        tenant, recipient, scope, issued = fields
        issued_at = datetime.fromtimestamp(int(issued), UTC)
    except (ValueError, TypeError, OverflowError, OSError):
        raise InvalidToken("this unsubscribe link is malformed") from None
    if not all(isinstance(v, str) for v in (tenant, recipient, scope)):
        raise InvalidToken("this unsubscribe link is malformed")
    if issued_at > now + timedelta(minutes=5) or now - issued_at > LIFETIME:
        raise InvalidToken("this unsubscribe link has expired")
    return UnsubscribeClaim(tenant, recipient, scope, issued_at)
