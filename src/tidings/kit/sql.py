"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, and_, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_insert(session: AsyncSession, table: Table | Any) -> Any:
    """An INSERT that supports ON CONFLICT on the session's dialect."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def newest_first(
    query: Select[Any],
    created: Any,
    key: Any,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Select[Any]:
    """Order ``query`` newest first by (created, key) and start after a keyset position."""
    if after is not None:
        stamp, last = after
        query = query.where(or_(created < stamp, and_(created == stamp, key < last)))
    return query.order_by(created.desc(), key.desc()).limit(limit)
