"""RS256 verification keys from a JWKS URL: cached, refreshed when an unknown kid shows up."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt

from tidings.errors import Unauthorized

log = logging.getLogger(__name__)


class JWKSKeys:
    """Keys by ``kid``. A refresh happens when the cache is older than ``ttl`` or a token
    names a kid we do not know, but never more often than ``min_refresh_interval``, so
    tokens with made-up kids cannot turn into a flood of requests to the key server.
    """

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        ttl: float = 3600.0,
        min_refresh_interval: float = 10.0,
        timeout: float = 5.0,
    ) -> None:
        self._url = url
        self._http = http
        self._ttl = ttl
        self._min_interval = min_refresh_interval
        self._timeout = timeout
        self._keys: dict[str | None, Any] = {}
        self._fetched_at = 0.0
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> Any:
        if time.monotonic() - self._fetched_at > self._ttl:
            await self._refresh()
        key = self._lookup(kid)
        if key is None:
            await self._refresh()
            key = self._lookup(kid)
        if key is None:
            raise Unauthorized("token is signed with an unknown key")
        return key

    def _lookup(self, kid: str | None) -> Any:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._attempted_at < self._min_interval:
                return
            self._attempted_at = time.monotonic()
            try:
                response = await self._http.get(self._url, timeout=self._timeout)
                response.raise_for_status()
                keys = _parse(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWKError) as exc:
                # keep what we had: an outage of the key server must not lock users out
                log.warning("cannot refresh JWKS keys: %s", type(exc).__name__)
                return
            self._keys = keys
            self._fetched_at = time.monotonic()


def _parse(document: Any) -> dict[str | None, Any]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: dict[str | None, Any] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
            continue
        keys[entry.get("kid")] = jwt.PyJWK.from_dict(entry, algorithm="RS256").key
    return keys
