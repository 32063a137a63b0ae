"""Opaque, signed list cursors bound to the filters they were issued for."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


class InvalidCursor(ValueError):
    """The cursor is garbage, forged, or belongs to other filters."""


class CursorSigner:
    def __init__(self, key: str) -> None:
        self._key = hashlib.sha256(b"tidings-cursor:" + key.encode()).digest()

    def _mac(self, body: bytes, scope: str) -> str:
        digest = hmac.new(self._key, scope.encode() + b"\x00" + body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")

    def encode(self, position: list[Any], scope: str) -> str:
        """Sign ``position`` (a keyset position) for a list whose filters hash to ``scope``."""
        body = json.dumps(position, separators=(",", ":")).encode()
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{payload}.{self._mac(body, scope)}"

    def decode(self, token: str, scope: str) -> list[Any]:
        try:
            payload, mac = token.split(".", 1)
            body = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        except (ValueError, TypeError):
            raise InvalidCursor("malformed cursor") from None
        if not mac.isascii() or not hmac.compare_digest(mac, self._mac(body, scope)):
            raise InvalidCursor("cursor does not belong to this list or its filters")
        try:
            position = json.loads(body)
        except ValueError:
            raise InvalidCursor("malformed cursor") from None
        if not isinstance(position, list):
            raise InvalidCursor("malformed cursor")
        return position


def filter_scope(name: str, **filters: Any) -> str:
    """A stable string naming a list and its filters; cursors are bound to it."""
    return name + ":" + json.dumps(filters, sort_keys=True, default=str, separators=(",", ":"))
