"""The HTTP surface of SPEC 5 and 6: request ids, problem documents, bad input of every
kind, size limits, authentication and roles, operations endpoints, a database outage and
log redaction.

Every response any test here receives is watched: it must carry ``X-Request-ID`` and must
not be a 5xx, except the deliberate 503s while the database is unreachable.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import JWT_SECRET, Service, Tokens, make_settings, running
from tests.integration.helpers import deliveries
from tidings.db import Database
from tidings.kit.logging import JSONFormatter

PROBLEM_JSON = "application/problem+json"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SOME_UUID = "00000000-0000-7000-8000-000000000001"
UNREACHABLE_DB = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens on port 1
LITERAL = {"recipients": ["cand"], "title": "Hello", "body": "World"}


class Watch:
    """Records every response of the clients it is attached to."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, str, int, bool]] = []
        self.missing_request_id: list[str] = []
        self.outage = False

    def attach(self, client: httpx.AsyncClient) -> httpx.AsyncClient:
        client.event_hooks["response"].append(self._record)
        return client

    async def _record(self, response: httpx.Response) -> None:
        request = response.request
        label = f"{request.method} {request.url.path}"
        self.responses.append((request.method, request.url.path, response.status_code, self.outage))
        if not response.headers.get("x-request-id"):
            self.missing_request_id.append(f"{label} -> {response.status_code}")

    @contextlib.contextmanager
    def database_outage(self) -> Iterator[None]:
        self.outage = True
        try:
            yield
        finally:
            self.outage = False

    def check(self) -> None:
        assert self.responses, "no response was watched"
        assert not self.missing_request_id, self.missing_request_id
        server_errors = [
            (method, path, status)
            for method, path, status, outage in self.responses
            if status >= 500 and not (status == 503 and outage)
        ]
        assert not server_errors, server_errors


@pytest.fixture(autouse=True)
def watch(request: pytest.FixtureRequest) -> Iterator[Watch]:
    seen = Watch()
    if "service" in request.fixturenames:
        seen.attach(request.getfixturevalue("service").client)
    yield seen
    seen.check()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= body.keys(), body
    assert body["status"] == status
    assert body["type"].startswith("https://") or body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    assert body["instance"] == response.headers["x-request-id"]
    return body


async def _status(client: httpx.AsyncClient, path: str, tokens: Tokens) -> int:
    """What an admin of acme gets for ``path``: 404 shows nothing was stored there."""
    return (await client.get(path, headers=tokens.admin())).status_code


def error_fields(problem: dict[str, Any]) -> set[str]:
    return {str(part) for error in problem.get("errors") or [] for part in error["loc"]}


# --- request ids -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "echoed"),
    [
        (None, False),
        ("req-42.abc:DEF_9", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("has spaces", False),
        ("semi;colon", False),
        ("", False),
        ("näive", False),
    ],
)
async def test_every_response_has_a_request_id(
    service: Service, given: str | None, echoed: bool
) -> None:
    headers = {} if given is None else {"X-Request-ID": given.encode()}
    for method, path, status in (
        ("GET", "/healthz", 200),
        ("GET", "/v1/recipients", 401),
        ("GET", "/v1/nowhere", 404),
        ("POST", "/v1/notifications", 401),
    ):
        r = await service.client.request(method, path, headers=headers)
        assert r.status_code == status
        request_id = r.headers["x-request-id"]
        if echoed:
            assert request_id == given
        else:
            assert UUID.match(request_id), request_id
        if status >= 400:
            assert r.json()["instance"] == request_id


async def test_generated_request_ids_are_unique(service: Service) -> None:
    ids = {(await service.client.get("/healthz")).headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20


# --- problem documents -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "who", "body", "status"),
    [
        ("GET", "/v1/recipients", None, None, 401),
        ("GET", "/v1/recipients", "user", None, 403),
        ("GET", "/v1/recipients/nobody", "service", None, 404),
        ("GET", f"/v1/sends/{SOME_UUID}", "service", None, 404),
        ("GET", "/v1/sends/not-a-uuid", "service", None, 422),
        ("POST", "/v1/notifications", "service", {"recipients": []}, 422),
        ("GET", "/v1/me/notifications?cursor=garbage", "user", None, 400),
        ("GET", "/v1/me/notifications?limit=0", "user", None, 422),
        ("GET", "/nowhere", None, None, 404),
        ("DELETE", "/healthz", None, None, 405),
    ],
)
async def test_errors_are_problem_documents(
    service: Service,
    tokens: Tokens,
    method: str,
    path: str,
    who: str | None,
    body: dict[str, Any] | None,
    status: int,
) -> None:
    headers = {"user": tokens.user("cand"), "service": tokens.service(), None: {}}[who]
    r = await service.client.request(method, path, json=body, headers=headers)
    problem = assert_problem(r, status)
    if status == 422:
        assert problem["errors"] and all({"loc", "msg"} <= e.keys() for e in problem["errors"])


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"not json",
        b'{"recipients": ["a"], "title": "t", "body": "b",}',
        b"{'recipients': ['a']}",
        b'{"recipients": ["a"], "title": "t", "body": "b"} trailing',
        b"\xff\xfe\x00{",
        b"",
        b"[]",
        b"null",
        b'"a string"',
        b'{"recipients": ["a"], "title": "t", "body": "b", "data": {"x": NaN}}',
        b"[" * 5000,
    ],
    ids=lambda raw: raw[:24].decode("latin-1"),
)
async def test_malformed_json_is_a_4xx_problem_and_stores_nothing(
    service: Service, tokens: Tokens, raw: bytes
) -> None:
    headers = {**tokens.service(), "Content-Type": "application/json"}
    r = await service.client.post("/v1/notifications", content=raw, headers=headers)
    assert 400 <= r.status_code < 500
    assert_problem(r, r.status_code)
    assert await deliveries(service.client, tokens) == []


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/notifications", {**LITERAL, "recipients": "cand"}, "recipients"),
        ("POST", "/v1/notifications", {**LITERAL, "recipients": [42]}, "recipients"),
        ("POST", "/v1/notifications", {**LITERAL, "title": 5}, "title"),
        ("POST", "/v1/notifications", {**LITERAL, "body": ["b"]}, "body"),
        ("POST", "/v1/notifications", {**LITERAL, "channels": "email"}, "channels"),
        ("POST", "/v1/notifications", {**LITERAL, "priority": 1}, "priority"),
        ("POST", "/v1/notifications", {**LITERAL, "send_at": 1893456000}, "send_at"),
        ("POST", "/v1/notifications", {**LITERAL, "idempotency_key": 7}, "idempotency_key"),
        ("POST", "/v1/notifications", {**LITERAL, "expires_at": True}, "expires_at"),
        (
            "POST",
            "/v1/notifications",
            {"recipients": ["cand"], "template": "digest", "data": "x=1"},
            "data",
        ),
        ("POST", "/v1/notifications/bulk", {"items": LITERAL}, "items"),
        ("POST", "/v1/notifications/bulk", {"items": [{**LITERAL, "title": 1}]}, "title"),
        ("PUT", "/v1/recipients/cand", {"name": 42}, "name"),
        ("PUT", "/v1/recipients/cand", {"email": ["a@example.test"]}, "email"),
        ("PUT", "/v1/recipients/cand", {"phone": 14155550123}, "phone"),
        ("PUT", "/v1/recipients/cand", {"data": [1, 2]}, "data"),
        ("POST", "/v1/me/notifications/read", {"ids": SOME_UUID}, "ids"),
        ("POST", "/v1/templates/digest/preview", {"data": "x"}, "data"),
        ("POST", "/v1/templates/digest/preview", {"locale": 5}, "locale"),
    ],
)
async def test_wrong_types_are_422_naming_the_field(
    service: Service,
    tokens: Tokens,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    headers = tokens.user("cand") if path.startswith("/v1/me/") else tokens.admin()
    r = await service.client.request(method, path, json=body, headers=headers)
    problem = assert_problem(r, 422)
    assert field in error_fields(problem), problem
    assert await deliveries(service.client, tokens) == []
    assert await _status(service.client, "/v1/recipients/cand", tokens) == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"unread": "maybe"}, "unread"),
        ({"priority": "huge"}, "priority"),
        ({"since": "2030-01-01T09:00:00"}, "since"),
        ({"until": "yesterday"}, "until"),
    ],
)
async def test_wrong_query_types_are_422_naming_the_parameter(
    service: Service, tokens: Tokens, params: dict[str, str], field: str
) -> None:
    r = await service.client.get("/v1/me/notifications", params=params, headers=tokens.user("c"))
    assert field in error_fields(assert_problem(r, 422))


NUL = "\u0000"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/notifications", {**LITERAL, "title": f"a{NUL}b"}, "title"),
        ("POST", "/v1/notifications", {**LITERAL, "body": NUL}, "body"),
        ("POST", "/v1/notifications", {**LITERAL, "recipients": [f"c{NUL}"]}, "recipients"),
        ("POST", "/v1/notifications", {**LITERAL, "category": f"x{NUL}"}, "category"),
        (
            "POST",
            "/v1/notifications",
            {"recipients": ["cand"], "template": "digest", "data": {"k": f"v{NUL}"}},
            "data",
        ),
        (
            "POST",
            "/v1/notifications",
            {"recipients": ["cand"], "template": "digest", "data": {f"k{NUL}": "v"}},
            "data",
        ),
        (
            "POST",
            "/v1/notifications",
            {"recipients": ["cand"], "template": "digest", "data": {"deep": [{f"{NUL}": 1}]}},
            "data",
        ),
        ("POST", "/v1/notifications/bulk", {"items": [{**LITERAL, "body": NUL}]}, "body"),
        ("PUT", "/v1/recipients/cand", {"name": f"Ada{NUL}"}, "name"),
        ("PUT", "/v1/recipients/cand", {"data": {f"k{NUL}": 1}}, "data"),
        ("PUT", "/v1/recipients/cand", {"data": {"k": [f"{NUL}"]}}, "data"),
        ("POST", "/v1/templates/digest/preview", {"data": {f"k{NUL}": 1}}, "data"),
        (
            "POST",
            "/v1/templates",
            {
                "key": "nul",
                "name": f"n{NUL}",
                "category": "general",
                "default_channels": ["in_app"],
                "content": {"in_app": {"title": "t", "body": "b"}},
            },
            "name",
        ),
        ("PUT", "/v1/tenant/settings", {"email_from": f"a{NUL}@example.test"}, "email_from"),
    ],
)
async def test_nul_characters_are_422_and_store_nothing(
    service: Service,
    tokens: Tokens,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    r = await service.client.request(method, path, json=body, headers=tokens.admin())
    problem = assert_problem(r, 422)
    assert field in error_fields(problem), problem
    assert await deliveries(service.client, tokens) == []
    assert await _status(service.client, "/v1/recipients/cand", tokens) == 404
    assert await _status(service.client, "/v1/templates/nul", tokens) == 404


# --- size limits -----------------------------------------------------------------------

MAX_BODY = 2048
MAX_BULK_BODY = 8192


@pytest.fixture
async def small_limits(tmp_path: Path, database_url: str, watch: Watch) -> AsyncIterator[Service]:
    settings = make_settings(
        tmp_path, database_url, max_body_bytes=MAX_BODY, max_bulk_body_bytes=MAX_BULK_BODY
    )
    async with running(settings) as svc:
        watch.attach(svc.client)
        yield svc


def _sized(payload: dict[str, Any], size: int, field: str = "body") -> bytes:
    """``payload`` with ``field`` padded so that the JSON is exactly ``size`` bytes."""
    base = len(json.dumps({**payload, field: ""}).encode())
    raw = json.dumps({**payload, field: "x" * (size - base)}).encode()
    assert len(raw) == size
    return raw


def _bulk(size: int) -> bytes:
    items = [{**LITERAL, "recipients": [f"bulk-{i}"], "body": "x" * 300} for i in range(12)]
    base = len(json.dumps({"items": items}).encode())
    items[-1]["body"] += "y" * (size - base)
    raw = json.dumps({"items": items}).encode()
    assert len(raw) == size
    return raw


async def _chunks(raw: bytes, size: int = 500) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


async def _post(
    svc: Service, path: str, raw: bytes, headers: dict[str, str], *, streamed: bool
) -> httpx.Response:
    headers = {**headers, "Content-Type": "application/json"}
    content: bytes | AsyncIterator[bytes] = _chunks(raw) if streamed else raw
    r = await svc.client.post(path, content=content, headers=headers)
    sent = r.request.headers
    assert ("content-length" in sent) is not streamed
    assert (sent.get("transfer-encoding") == "chunked") is streamed
    return r


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_bodies_over_the_limit_are_413_and_store_nothing(
    small_limits: Service, tokens: Tokens, streamed: bool
) -> None:
    svc = small_limits
    at_limit = _sized(LITERAL, MAX_BODY)
    r = await _post(svc, "/v1/notifications", at_limit, tokens.service(), streamed=streamed)
    assert r.status_code == 202, r.text
    for path, payload in (
        ("/v1/notifications", {**LITERAL, "recipients": ["too-big"]}),
        ("/v1/notifications/bulk", None),
    ):
        raw = _sized(payload, MAX_BODY + 1) if payload else _bulk(MAX_BULK_BODY + 1)
        r = await _post(svc, path, raw, tokens.service(), streamed=streamed)
        problem = assert_problem(r, 413)
        assert str(MAX_BULK_BODY if payload is None else MAX_BODY) in problem["detail"]
    raw = json.dumps({"name": "Big", "data": {"blob": "x" * MAX_BODY}}).encode()
    headers = {**tokens.service(), "Content-Type": "application/json"}
    r = await svc.client.put(
        "/v1/recipients/big", content=_chunks(raw) if streamed else raw, headers=headers
    )
    assert_problem(r, 413)
    recipients = {row["recipient_id"] for row in await deliveries(svc.client, tokens)}
    assert recipients == {"cand"}
    assert await _status(svc.client, "/v1/recipients/big", tokens) == 404


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_bulk_accepts_bodies_up_to_its_own_limit(
    small_limits: Service, tokens: Tokens, streamed: bool
) -> None:
    svc = small_limits
    raw = _bulk(MAX_BULK_BODY)
    r = await _post(svc, "/v1/notifications/bulk", raw, tokens.service(), streamed=streamed)
    assert r.status_code == 202, r.text
    assert len(r.json()["items"]) == 12
    # the bulk allowance is the bulk endpoint's alone
    r = await _post(
        svc, "/v1/notifications", _sized(LITERAL, 5000), tokens.service(), streamed=streamed
    )
    assert_problem(r, 413)


# --- authentication and roles ----------------------------------------------------------


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "ats-backend",
        "tenant": "acme",
        "roles": ["service"],
        "exp": int(time.time()) + 600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(secret: str = JWT_SECRET, **changes: Any) -> str:
    return jwt.encode(_claims(**changes), secret, algorithm="HS256")


BAD_CREDENTIALS: dict[str, str | None] = {
    "no header": None,
    "basic scheme": "Basic dXNlcjpwYXNzd29yZA==",
    "bearer without token": "Bearer ",
    "token without scheme": _signed(),
    "not a jwt": "Bearer not-a-jwt",
    "expired": "Bearer " + _signed(exp=int(time.time()) - 120),
    "not yet valid": "Bearer " + _signed(nbf=int(time.time()) + 600),
    "other secret": "Bearer " + _signed("another-secret-that-is-long-enough-0123456789"),
    "alg none": "Bearer " + f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
    "alg none, signature kept": "Bearer "
    + f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    + _signed().rsplit(".", 1)[1],
    "tampered payload": "Bearer "
    + ".".join(
        (lambda parts: [parts[0], _b64(_claims(roles=["admin"])), parts[2]])(_signed().split("."))
    ),
    "no tenant": "Bearer " + _signed(tenant=None),
    "no sub": "Bearer " + _signed(sub=None),
    "no exp": "Bearer " + _signed(exp=None),
    "exp is a word": "Bearer " + _signed(exp="tomorrow"),
    "exp is a numeric string": "Bearer " + _signed(exp=str(int(time.time()) + 600)),
    "exp is a boolean": "Bearer " + _signed(exp=True),
    # PyJWT checks these with int(), which takes "1767225600"; RFC 7519 wants a number
    "nbf is a numeric string": "Bearer " + _signed(nbf=str(int(time.time()) - 60)),
    "iat is a numeric string": "Bearer " + _signed(iat=str(int(time.time()))),
    "tenant is not a tenant id": "Bearer " + _signed(tenant="acme corp"),
    "tenant is a number": "Bearer " + _signed(tenant=7),
    "roles is a string": "Bearer " + _signed(roles="admin"),
}


@pytest.mark.parametrize("case", list(BAD_CREDENTIALS))
async def test_bad_credentials_are_401_with_www_authenticate(service: Service, case: str) -> None:
    value = BAD_CREDENTIALS[case]
    headers = {} if value is None else {"Authorization": value}
    for method, path, body in (
        ("GET", "/v1/recipients", None),
        ("GET", "/v1/me/notifications", None),
        ("POST", "/v1/notifications", LITERAL),
    ):
        r = await service.client.request(method, path, json=body, headers=headers)
        assert_problem(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_good_tokens_pass(service: Service) -> None:
    """The forged tokens above differ from this one only in what makes them bad."""
    r = await service.client.get("/v1/recipients", headers={"Authorization": f"Bearer {_signed()}"})
    assert r.status_code == 200, r.text
    # within the 30 s leeway
    near = _signed(exp=int(time.time()) - 5)
    r = await service.client.get("/v1/recipients", headers={"Authorization": f"Bearer {near}"})
    assert r.status_code == 200, r.text


TEMPLATE = {
    "key": "fresh",
    "name": "Fresh",
    "category": "general",
    "default_channels": ["in_app"],
    "content": {"in_app": {"title": "t", "body": "b"}},
}


@pytest.mark.parametrize(
    ("who", "method", "path", "body"),
    [
        ("user", "GET", "/v1/recipients", None),
        ("user", "GET", "/v1/recipients/cand", None),
        ("user", "PUT", "/v1/recipients/cand", {"name": "Ada"}),
        ("user", "DELETE", "/v1/recipients/cand", None),
        ("user", "POST", "/v1/notifications", LITERAL),
        ("user", "POST", "/v1/notifications/bulk", {"items": [LITERAL]}),
        ("user", "GET", f"/v1/sends/{SOME_UUID}", None),
        ("user", "DELETE", f"/v1/sends/{SOME_UUID}", None),
        ("user", "GET", "/v1/templates", None),
        ("user", "GET", "/v1/templates/digest", None),
        ("user", "POST", "/v1/templates/digest/preview", {"data": {}}),
        ("service", "GET", "/v1/deliveries", None),
        ("service", "POST", f"/v1/deliveries/{SOME_UUID}/retry", None),
        ("service", "GET", "/v1/tenant/settings", None),
        ("service", "PUT", "/v1/tenant/settings", {"email_from": "ops@example.test"}),
        ("service", "POST", "/v1/templates", TEMPLATE),
        (
            "service",
            "PUT",
            "/v1/templates/digest",
            {k: v for k, v in TEMPLATE.items() if k != "key"},
        ),
        ("service", "PATCH", "/v1/templates/digest", {"name": "Changed"}),
        ("service", "DELETE", "/v1/templates/digest", None),
    ],
)
async def test_missing_role_is_403_and_changes_nothing(
    service: Service,
    tokens: Tokens,
    who: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    headers = tokens.user("cand") if who == "user" else tokens.service()
    r = await service.client.request(method, path, json=body, headers=headers)
    assert_problem(r, 403)
    admin = tokens.admin()
    assert await _status(service.client, "/v1/recipients/cand", tokens) == 404
    assert await _status(service.client, "/v1/templates/fresh", tokens) == 404
    digest = await service.client.get("/v1/templates/digest", headers=admin)
    assert digest.status_code == 200 and digest.json()["name"] != "Changed"
    settings = await service.client.get("/v1/tenant/settings", headers=admin)
    assert settings.json()["email_from"] is None
    assert await deliveries(service.client, tokens) == []


# --- routing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nowhere"),
        ("GET", "/v1/nowhere"),
        ("POST", "/v1/nowhere"),
        ("GET", "/v2/recipients"),
    ],
)
async def test_unknown_paths_are_404_problems(
    service: Service, tokens: Tokens, method: str, path: str
) -> None:
    r = await service.client.request(method, path, headers=tokens.admin())
    assert_problem(r, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/v1/recipients"),
        ("DELETE", "/v1/notifications"),
        ("PUT", "/v1/sends/" + SOME_UUID),
        ("POST", "/healthz"),
        ("PUT", "/v1/me/notifications/read-all"),
    ],
)
async def test_wrong_methods_are_405_problems(
    service: Service, tokens: Tokens, method: str, path: str
) -> None:
    r = await service.client.request(method, path, headers=tokens.admin())
    assert_problem(r, 405)
    assert r.headers["allow"]


# --- operations ------------------------------------------------------------------------


async def test_operations_endpoints(service: Service) -> None:
    client = service.client
    r = await client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = await client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready"})
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "tidings_http_requests_total" in r.text
    assert 'route="/readyz"' in r.text
    for path in ("/docs", "/redoc"):
        r = await client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["openapi"].startswith("3.")
    assert "/v1/notifications" in schema["paths"]


async def test_database_outage_is_503_with_retry_after(
    service: Service, tokens: Tokens, watch: Watch
) -> None:
    client, ctx = service.client, service.ctx
    original, broken = ctx.db, Database(UNREACHABLE_DB)
    ctx.db = broken
    try:
        with watch.database_outage():
            for method, path, body in (
                ("GET", "/v1/recipients", None),
                ("POST", "/v1/notifications", LITERAL),
                ("GET", "/readyz", None),
            ):
                r = await client.request(method, path, json=body, headers=tokens.service())
                assert_problem(r, 503)
                assert int(r.headers["retry-after"]) > 0
            # the process itself is up, and what needs no database still works
            assert (await client.get("/healthz")).status_code == 200
            assert_problem(await client.get("/v1/recipients"), 401)
    finally:
        ctx.db = original
        await broken.dispose()
    assert (await client.get("/readyz")).status_code == 200
    r = await client.get("/v1/recipients", headers=tokens.service())
    assert r.status_code == 200
    assert r.json()["items"] == []  # the send during the outage stored nothing
    assert await deliveries(client, tokens) == []


# --- logs --------------------------------------------------------------------------------


async def test_logs_never_show_tokens(
    service: Service, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bearer = tokens.service()["Authorization"].removeprefix("Bearer ")
    forged = _signed("another-secret-that-is-long-enough-0123456789")
    secrets = ["abc.def.ghi", bearer, bearer.rsplit(".", 1)[1], forged, "s3cr3t-unsub-token"]
    client = service.client
    await client.get(
        "/v1/recipients?token=abc.def.ghi", headers={"Authorization": f"Bearer {bearer}"}
    )
    await client.get("/v1/me/notifications?limit=5&token=abc.def.ghi&x=1", headers=tokens.user("c"))
    await client.get(
        "/v1/recipients?token=abc.def.ghi", headers={"Authorization": f"Bearer {forged}"}
    )
    await client.get("/v1/unsubscribe/s3cr3t-unsub-token")
    await client.post("/v1/notifications?token=abc.def.ghi", content=b"{", headers=tokens.service())

    formatter = JSONFormatter()
    records = caplog.records
    access = [r for r in records if r.name == "tidings.access"]
    assert len(access) >= 5, [r.getMessage() for r in records]
    assert any("token=[redacted]" in r.getMessage() for r in access)
    for record in records:
        line = formatter.format(record)
        json.loads(line)
        for secret in secrets:
            assert secret not in line, (record.name, line)
        if record.name.startswith("tidings"):
            # Tidings' own records are clean before any formatter sees them
            raw = record.getMessage() + json.dumps(vars(record), default=str)
            for secret in secrets:
                assert secret not in raw, (record.name, raw)
