"""Tidings-Signature: signing, the header with several secrets, verification, the body."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tidings.channels.base import WebhookEvent
from tidings.channels.webhook import (
    event_body,
    sign_payload,
    signature_header,
    verify_signature,
)

BODY = b'{"id":"evt_1","type":"notification.created"}'
T = 1_700_000_000
# printf '%s' '1700000000.{"id":"evt_1","type":"notification.created"}' \
#   | openssl dgst -sha256 -hmac whsec_test
OPENSSL_VECTOR = "934aa18c940dcb642817db934ce603bc1f40d8a3d75674642fe112bd30e1a5af"


def _reference(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, "sha256").hexdigest()


def test_known_vector() -> None:
    assert sign_payload("whsec_test", T, BODY) == OPENSSL_VECTOR
    assert _reference("whsec_test", T, BODY) == OPENSSL_VECTOR


@pytest.mark.parametrize(
    ("secret", "timestamp", "body"),
    [
        ("s", 0, b""),
        ("whsec_ünïcode", 1, b"{}"),
        ("a" * 200, 4_102_444_800, '{"data":"héllo"}'.encode()),
        ("k", T, bytes(range(256))),
    ],
)
def test_matches_an_independent_hmac(secret: str, timestamp: int, body: bytes) -> None:
    expected = hmac.new(
        secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert sign_payload(secret, timestamp, body) == expected
    assert len(expected) == 64


def test_header_has_one_v1_per_secret_in_order() -> None:
    header = signature_header(["old-secret", "new-secret"], T, BODY)
    assert header == (
        f"t={T},v1={_reference('old-secret', T, BODY)},v1={_reference('new-secret', T, BODY)}"
    )
    assert signature_header(["only"], T, BODY) == f"t={T},v1={_reference('only', T, BODY)}"


def test_header_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        signature_header([], T, BODY)


def test_either_of_two_secrets_verifies() -> None:
    header = signature_header(["old-secret", "new-secret"], T, BODY)
    assert verify_signature(header, BODY, "old-secret", now=T)
    assert verify_signature(header, BODY, "new-secret", now=T)
    assert not verify_signature(header, BODY, "third-secret", now=T)


def test_tampered_body_fails() -> None:
    header = signature_header(["s1"], T, BODY)
    assert not verify_signature(header, BODY.replace(b"evt_1", b"evt_2"), "s1", now=T)
    assert not verify_signature(header, BODY + b" ", "s1", now=T)
    assert not verify_signature(header, b"", "s1", now=T)


def test_tampered_timestamp_fails() -> None:
    header = signature_header(["s1"], T, BODY).replace(f"t={T}", f"t={T + 1}")
    assert not verify_signature(header, BODY, "s1", now=T)


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        (T, True),
        (T + 300, True),
        (T - 300, True),  # a receiver whose clock is behind
        (T + 301, False),  # stale: a replay
        (T - 301, False),
        (T + 86_400, False),
    ],
)
def test_timestamp_tolerance(now: int, ok: bool) -> None:
    header = signature_header(["s1"], T, BODY)
    assert verify_signature(header, BODY, "s1", now=now) is ok


def test_custom_tolerance() -> None:
    header = signature_header(["s1"], T, BODY)
    assert verify_signature(header, BODY, "s1", now=T + 3000, tolerance=3600)
    assert not verify_signature(header, BODY, "s1", now=T + 10, tolerance=5)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"v1={_reference('s1', T, BODY)}",  # no timestamp
        f"t={T}",  # no signature
        f"t={T},t={T},v1={_reference('s1', T, BODY)}",  # two timestamps
        f"t=abc,v1={_reference('s1', T, BODY)}",
        f"t=-{T},v1={_reference('s1', T, BODY)}",
        f"t={T},v1={_reference('s1', T, BODY).upper()}",
        f"t={T},v1={_reference('s1', T, BODY)[:-1]}",
        f"t={T},v0={_reference('s1', T, BODY)}",  # unknown scheme only
        f"t={T},v1=ü{_reference('s1', T, BODY)[1:]}",
    ],
)
def test_malformed_headers_fail(header: str) -> None:
    assert not verify_signature(header, BODY, "s1", now=T)


def test_unknown_schemes_and_spaces_are_tolerated() -> None:
    good = _reference("s1", T, BODY)
    assert verify_signature(f"t={T}, v0=abc, v1={good}", BODY, "s1", now=T)


def _event(**overrides: object) -> WebhookEvent:
    values: dict[str, object] = {
        "id": "evt_01",
        "type": "notification.created",
        "created_at": "2026-05-01T12:00:00Z",
        "tenant": "acme",
        "data": {"recipient_id": "u-1", "title": "Grüße 👋", "n": 3, "ok": True, "x": None},
        "secrets": ("never-in-the-body",),
    }
    values.update(overrides)
    return WebhookEvent(**values)  # type: ignore[arg-type]


def test_event_body_is_compact_ordered_utf8_json() -> None:
    body = event_body(_event())
    assert (
        body
        == (
            '{"id":"evt_01","type":"notification.created","created_at":"2026-05-01T12:00:00Z",'
            '"tenant":"acme","data":{"recipient_id":"u-1","title":"Grüße 👋","n":3,"ok":true,'
            '"x":null}}'
        ).encode()
    )
    assert list(json.loads(body)) == ["id", "type", "created_at", "tenant", "data"]
    assert b"never-in-the-body" not in body


def test_event_body_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(ValueError, match=r"(?i)nan|out of range"):
        event_body(_event(data={"x": float("nan")}))
    with pytest.raises(TypeError):
        event_body(_event(data={"x": object()}))
