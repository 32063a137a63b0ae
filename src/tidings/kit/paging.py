"""Keyset paging over (created_at, id), newest first, with signed cursors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from tidings.errors import BadRequest
from tidings.kit.cursor import CursorSigner, InvalidCursor

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def decode_position(
    signer: CursorSigner, cursor: str | None, scope: str
) -> tuple[datetime, str] | None:
    """The (created_at, id) a page starts after, or None for the first page; 400 if bad."""
    if cursor is None:
        return None
    try:
        position = signer.decode(cursor, scope)
        stamp, item_id = position
        return datetime.fromisoformat(stamp), str(item_id)
    except (InvalidCursor, ValueError, TypeError) as exc:
        raise BadRequest(f"invalid cursor: {exc}") from None


def next_cursor(
    signer: CursorSigner,
    rows: Sequence[T],
    limit: int,
    scope: str,
    key: Callable[[T], tuple[datetime, str]],
) -> tuple[list[T], str | None]:
    """Cut a fetched ``limit + 1`` rows to a page and sign the cursor for the next one."""
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return items, None
    stamp, item_id = key(items[-1])
    position: list[Any] = [stamp.isoformat(), item_id]
    return items, signer.encode(position, scope)
