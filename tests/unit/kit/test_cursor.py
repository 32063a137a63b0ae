"""Signed list cursors: round trips, and everything else is an InvalidCursor."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tidings.kit.cursor import CursorSigner, InvalidCursor, filter_scope

SIGNER = CursorSigner("cursor-test-key")
SCOPE = filter_scope("notifications", tenant="acme", status="sent")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(
    "position",
    [
        [],
        ["2026-01-31T09:00:00+00:00", "01943b9a-7c1e-7000-8000-000000000001"],
        [1, 2.5, None, True, "é ünïcode", {"nested": [1, 2]}],
        ["x" * 2000],
    ],
)
def test_round_trip(position: list[Any]) -> None:
    token = SIGNER.encode(position, SCOPE)
    assert SIGNER.decode(token, SCOPE) == position


def test_cursor_is_url_safe() -> None:
    token = SIGNER.encode(["é/+?&=", "a" * 50], SCOPE)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_same_key_in_another_signer_decodes() -> None:
    token = SIGNER.encode(["a", 1], SCOPE)
    assert CursorSigner("cursor-test-key").decode(token, SCOPE) == ["a", 1]


def test_tampered_payload_is_refused() -> None:
    token = SIGNER.encode(["2026-01-31T09:00:00+00:00", "id-1"], SCOPE)
    _, mac = token.split(".")
    forged = b64(json.dumps(["2026-01-31T09:00:00+00:00", "id-2"]).encode())
    with pytest.raises(InvalidCursor):
        SIGNER.decode(f"{forged}.{mac}", SCOPE)


@pytest.mark.parametrize("index", [0, 5, -1])
def test_tampered_mac_is_refused(index: int) -> None:
    payload, mac = SIGNER.encode(["a", 1], SCOPE).split(".")
    chars = list(mac)
    chars[index] = "A" if chars[index] != "A" else "B"
    with pytest.raises(InvalidCursor):
        SIGNER.decode(f"{payload}.{''.join(chars)}", SCOPE)


@pytest.mark.parametrize(
    "scope",
    [
        filter_scope("notifications", tenant="acme", status="failed"),
        filter_scope("notifications", tenant="globex", status="sent"),
        filter_scope("notifications", tenant="acme"),
        filter_scope("deliveries", tenant="acme", status="sent"),
        "",
    ],
)
def test_cursor_from_other_filters_is_refused(scope: str) -> None:
    token = SIGNER.encode(["a", 1], SCOPE)
    with pytest.raises(InvalidCursor):
        SIGNER.decode(token, scope)


def test_cursor_from_other_key_is_refused() -> None:
    token = CursorSigner("another-key").encode(["a", 1], SCOPE)
    with pytest.raises(InvalidCursor):
        SIGNER.decode(token, SCOPE)


def test_signed_position_that_is_not_a_list_is_refused() -> None:
    token = SIGNER.encode({"a": 1}, SCOPE)  # type: ignore[arg-type]
    with pytest.raises(InvalidCursor):
        SIGNER.decode(token, SCOPE)


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "abc",
        "a.b.c",
        "!!!.???",
        "eyJ.",
        "%7B%7D.abc",
        "W10",  # a valid payload without a mac
        "W10.",
        "W10.AAAAAAAAAAAAAAAAAAAAAAAA",
        " " * 10,
        "null",
        "é.abc",
        "\x00.\x00",
    ],
)
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidCursor):
        SIGNER.decode(token, SCOPE)


def test_filter_scope_ignores_argument_order() -> None:
    assert filter_scope("n", a=1, b="x") == filter_scope("n", b="x", a=1)
    assert filter_scope("n", a=1) != filter_scope("n", a="1")
    assert filter_scope("n", a=None) != filter_scope("n")


def test_non_ascii_mac_is_an_invalid_cursor() -> None:
    with pytest.raises(InvalidCursor):
        SIGNER.decode("W10.é", SCOPE)


def decodes_or_refuses(token: str) -> None:
    """Any string either decodes to a list or is refused with InvalidCursor; nothing else."""
    try:
        position = SIGNER.decode(token, SCOPE)
    except InvalidCursor:
        return
    assert isinstance(position, list)


@settings(database=None, max_examples=300)
@given(st.text())
@example("abc.é")
def test_arbitrary_text_is_only_ever_an_invalid_cursor(token: str) -> None:
    decodes_or_refuses(token)


@settings(database=None, max_examples=300)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
@example("abc.def")
@example("W10.")
def test_arbitrary_ascii_text_is_only_ever_an_invalid_cursor(token: str) -> None:
    decodes_or_refuses(token)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(), st.floats(allow_nan=False)
)


@settings(database=None, max_examples=100)
@given(position=st.lists(json_scalars, max_size=5), scope=st.text())
def test_any_position_round_trips(position: list[Any], scope: str) -> None:
    assert SIGNER.decode(SIGNER.encode(position, scope), scope) == position
