"""RS256 tokens verified with keys from a local JWKS server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Service, make_settings, running


class KeyServer:
    """Serves ``document`` as JSON at /jwks.json and counts the requests."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def publish(self, *keys: tuple[str, rsa.RSAPrivateKey]) -> None:
        entries = []
        for kid, key in keys:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            entries.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        self.document = {"keys": entries}


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _token(key: Any, kid: str | None, algorithm: str = "RS256", **claims: Any) -> str:
    body = {"sub": "cand-1", "tenant": "acme", "exp": int(time.time()) + 300, **claims}
    headers = {"kid": kid} if kid else {}
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


@pytest.fixture
async def jwks_service(
    tmp_path: Path, database_url: str, key_server: KeyServer
) -> AsyncIterator[Service]:
    settings = make_settings(
        tmp_path, database_url, jwt_jwks_url=key_server.url, jwt_jwks_refresh_seconds=0.3
    )
    async with running(settings) as svc:
        yield svc


async def _status(svc: Service, token: str) -> int:
    r = await svc.client.get(
        "/v1/me/notifications/unread-count", headers={"Authorization": f"Bearer {token}"}
    )
    return r.status_code


async def test_tokens_verify_and_rotation_refreshes_the_keys(
    jwks_service: Service, key_server: KeyServer
) -> None:
    first, second = _key(), _key()
    key_server.publish(("k1", first))
    assert await _status(jwks_service, _token(first, "k1")) == 200
    assert await _status(jwks_service, _token(first, "k1")) == 200
    assert key_server.hits == 1  # cached
    key_server.publish(("k1", first), ("k2", second))
    await asyncio.sleep(0.35)  # the least time between two fetches
    assert await _status(jwks_service, _token(second, "k2")) == 200
    assert key_server.hits == 2  # refreshed once for the unknown kid


async def test_unknown_kids_and_forgeries_are_refused_without_flooding(
    tmp_path: Path, database_url: str, key_server: KeyServer
) -> None:
    good, other = _key(), _key()
    key_server.publish(("k1", good))
    settings = make_settings(tmp_path, database_url, jwt_jwks_url=key_server.url)
    async with running(settings) as svc:  # the default 10 s between fetches
        assert await _status(svc, _token(good, "k1")) == 200
        for i in range(20):
            assert await _status(svc, _token(good, f"made-up-{i}")) == 401
        assert key_server.hits == 1
        assert await _status(svc, _token(other, "k1")) == 401  # wrong signature
        hs = jwt.encode(
            {"sub": "a", "tenant": "acme", "exp": int(time.time()) + 60},
            "x" * 40,
            algorithm="HS256",
            headers={"kid": "k1"},
        )
        assert await _status(svc, hs) == 401  # no algorithm confusion
        assert await _status(svc, "not.a.token") == 401


async def test_key_server_down_is_a_401_not_an_error(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, jwt_jwks_url="http://127.0.0.1:1/jwks.json")
    async with running(settings) as svc:
        assert await _status(svc, _token(_key(), "k1")) == 401
