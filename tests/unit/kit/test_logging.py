"""Log redaction and the JSON formatter: request ids in, secrets out."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from tidings.kit.logging import ConsoleFormatter, JSONFormatter, redact, request_id_var

JWT = jwt.encode(
    {"sub": "user-1", "tenant": "acme", "exp": 4102444800},
    "logging-test-secret-0123456789-abcdef",
    algorithm="HS256",
)
OPAQUE = "opaque-t0ken_value~123"


@pytest.fixture
def request_id() -> Iterator[str]:
    token = request_id_var.set("req-0123")
    yield "req-0123"
    request_id_var.reset(token)


def record(
    msg: str, *args: object, extra: dict[str, Any] | None = None, exc: bool = False
) -> logging.LogRecord:
    return logging.getLogger("tidings.test").makeRecord(
        "tidings.test",
        logging.INFO,
        __file__,
        1,
        msg,
        args,
        sys.exc_info() if exc else None,
        extra=extra,
    )


def formatted(rec: logging.LogRecord) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(JSONFormatter().format(rec))
    return entry


# --- redact ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (f"Authorization: Bearer {OPAQUE}", OPAQUE, "Bearer [redacted]"),
        (f"authorization: bearer {OPAQUE}", OPAQUE, "bearer [redacted]"),
        (f"BEARER   {JWT}", JWT, "BEARER   [redacted]"),
        (f"GET /v1/ws?token={OPAQUE}&limit=5", OPAQUE, "token=[redacted]&limit=5"),
        (f"GET /v1/ws?TOKEN={OPAQUE}", OPAQUE, "TOKEN=[redacted]"),
        (f"cb?access_token={OPAQUE} done", OPAQUE, "access_token=[redacted] done"),
        (f"password={OPAQUE}", OPAQUE, "password=[redacted]"),
        (f"api_key={OPAQUE}", OPAQUE, "api_key=[redacted]"),
        (f"secret={OPAQUE}", OPAQUE, "secret=[redacted]"),
        (f"got {JWT} from the client", JWT, "got [redacted-jwt] from the client"),
        (f"claims={{'t': '{JWT}'}}", JWT, "[redacted-jwt]"),
        (f"GET /v1/unsubscribe/{OPAQUE}", OPAQUE, "/v1/unsubscribe/[redacted]"),
        (f"POST /v1/unsubscribe/{OPAQUE}?one_click=1", OPAQUE, "/v1/unsubscribe/[redacted]?one"),
        (f"https://n.example.test/v1/unsubscribe/{JWT}", JWT, "/v1/unsubscribe/[redacted]"),
    ],
)
def test_redact_removes_secrets(text: str, secret: str, kept: str) -> None:
    clean = redact(text)
    assert secret not in clean
    assert kept in clean


@pytest.mark.parametrize(
    "text",
    [
        "delivered 3 notifications to user@example.test",
        "GET /v1/notifications?limit=5&cursor=abc",
        "template welcome.email rendered in 4 ms",
        "/v1/unsubscribe",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


# --- JSONFormatter ---------------------------------------------------------------------


def test_json_line_carries_level_logger_and_message() -> None:
    entry = formatted(record("sent %d of %s", 3, "five"))
    assert entry["level"] == "info"
    assert entry["logger"] == "tidings.test"
    assert entry["msg"] == "sent 3 of five"
    assert entry["ts"].endswith("+00:00")
    assert "request_id" not in entry


def test_json_line_carries_request_id_when_set(request_id: str) -> None:
    assert formatted(record("hello"))["request_id"] == request_id


def test_json_line_carries_extra_fields() -> None:
    entry = formatted(record("x", extra={"notification_id": "n-1", "attempt": 2}))
    assert entry["notification_id"] == "n-1"
    assert entry["attempt"] == 2


@pytest.mark.parametrize(
    ("msg", "args", "extra", "secret"),
    [
        (f"auth header Bearer {OPAQUE}", (), None, OPAQUE),
        (f"auth header Bearer {JWT}", (), None, JWT),
        ("auth header %s", (f"Bearer {OPAQUE}",), None, OPAQUE),
        ("request", (), {"authorization": f"Bearer {OPAQUE}"}, OPAQUE),
        ("request", (), {"authorization": f"Bearer {JWT}"}, JWT),
        ("request", (), {"headers": {"Authorization": f"Bearer {OPAQUE}"}}, OPAQUE),
        ("request", (), {"token": JWT}, JWT),
        ("request", (), {"url": f"/v1/ws?token={OPAQUE}"}, OPAQUE),
    ],
)
def test_json_line_never_contains_a_bearer_token(
    request_id: str, msg: str, args: tuple[object, ...], extra: dict[str, Any] | None, secret: str
) -> None:
    line = JSONFormatter().format(record(msg, *args, extra=extra))
    assert secret not in line
    assert json.loads(line)["request_id"] == request_id


def test_exception_text_is_redacted() -> None:
    try:
        raise ValueError(f"refused Bearer {JWT}")
    except ValueError:
        line = JSONFormatter().format(record("boom", exc=True))
    assert JWT not in line
    assert "ValueError" in json.loads(line)["exc"]


@pytest.mark.parametrize(
    "msg",
    [f'GET "/v1/ws?token={OPAQUE}" 200', f'POST "/v1/unsubscribe/{OPAQUE}" 200'],
)
def test_json_line_stays_json_when_a_secret_is_quoted(msg: str) -> None:
    line = JSONFormatter().format(record(msg))
    assert OPAQUE not in line
    assert json.loads(line)["msg"].startswith(("GET", "POST"))


def test_console_line_is_redacted_and_carries_request_id(request_id: str) -> None:
    line = ConsoleFormatter().format(
        record(f"auth Bearer {OPAQUE}", extra={"url": f"/v1/unsubscribe/{OPAQUE}"})
    )
    assert OPAQUE not in line
    assert f"request_id={request_id}" in line
