"""Keyset paging: pages cut at the limit, cursors round trip, bad cursors are a 400."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tidings.errors import BadRequest
from tidings.kit.cursor import CursorSigner, filter_scope
from tidings.kit.paging import decode_position, next_cursor

SIGNER = CursorSigner("paging-test-key")
SCOPE = filter_scope("notifications", tenant="acme", recipient="user-1")
START = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)

Row = tuple[datetime, str]


def rows(count: int) -> list[Row]:
    """Newest first, the order a repository returns them in."""
    return [(START - timedelta(seconds=i), f"id-{i:03d}") for i in range(count)]


def key(row: Row) -> Row:
    return row


@pytest.mark.parametrize(("count", "limit"), [(0, 3), (2, 3), (3, 3), (1, 1)])
def test_no_cursor_without_a_further_row(count: int, limit: int) -> None:
    items, cursor = next_cursor(SIGNER, rows(count), limit, SCOPE, key)
    assert items == rows(count)
    assert cursor is None


@pytest.mark.parametrize(("count", "limit"), [(4, 3), (2, 1), (201, 200)])
def test_cursor_points_after_the_last_item(count: int, limit: int) -> None:
    fetched = rows(count)
    items, cursor = next_cursor(SIGNER, fetched, limit, SCOPE, key)
    assert items == fetched[:limit]
    assert cursor is not None
    assert decode_position(SIGNER, cursor, SCOPE) == items[-1]


def test_position_keeps_its_zone_and_microseconds() -> None:
    stamp = datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
    _, cursor = next_cursor(SIGNER, [(stamp, "a"), (stamp, "b")], 1, SCOPE, key)
    assert cursor is not None
    position = decode_position(SIGNER, cursor, SCOPE)
    assert position is not None
    assert position[0] == stamp
    assert position[0].utcoffset() == timedelta(0)


def test_first_page_has_no_position() -> None:
    assert decode_position(SIGNER, None, SCOPE) is None


def test_walking_the_pages_visits_every_row_once() -> None:
    everything = rows(10)
    seen: list[Row] = []
    cursor: str | None = None
    for _ in range(10):
        after = decode_position(SIGNER, cursor, SCOPE)
        remaining = [r for r in everything if after is None or r < after]
        page, cursor = next_cursor(SIGNER, remaining[:4], 3, SCOPE, key)
        seen.extend(page)
        if cursor is None:
            break
    assert seen == everything


def bad_cursors() -> list[str]:
    stamp = START.isoformat()
    return [
        "",
        "garbage",
        "a.b",
        "é.é",
        "abc.é",
        SIGNER.encode([stamp, "id"], filter_scope("notifications", tenant="globex")),
        CursorSigner("another-key").encode([stamp, "id"], SCOPE),
        SIGNER.encode([], SCOPE),
        SIGNER.encode([stamp], SCOPE),
        SIGNER.encode([stamp, "id", "extra"], SCOPE),
        SIGNER.encode(["yesterday", "id"], SCOPE),
        SIGNER.encode([None, "id"], SCOPE),
        SIGNER.encode([1769860800, "id"], SCOPE),
    ]


@pytest.mark.parametrize("cursor", bad_cursors())
def test_bad_cursor_is_a_bad_request(cursor: str) -> None:
    with pytest.raises(BadRequest, match="invalid cursor") as info:
        decode_position(SIGNER, cursor, SCOPE)
    assert info.value.status == 400
