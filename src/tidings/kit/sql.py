"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
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


# From this many rows on, PostgreSQL takes an insert through COPY: about twice as fast as
# pipelined INSERTs for the thousands of rows of a bulk or topic send, slower for a few.
COPY_FROM_ROWS = 200


def copies(session: AsyncSession, rows: Sequence[Any]) -> bool:
    """Whether ``copy_rows`` should write these rows (PostgreSQL, and enough of them)."""
    return len(rows) >= COPY_FROM_ROWS and is_postgresql(session)


async def copy_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``COPY table FROM STDIN`` (PostgreSQL) in the session's transaction. Every row has
    the same keys; each value goes through its column type's bind processing, as in an
    INSERT."""
    connection = await session.connection()
    dialect = connection.dialect
    columns = list(rows[0])
    plan = [
        (name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in columns
    ]
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    async with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            await copy.write_row(
                [row[name] if process is None else process(row[name]) for name, process in plan]
            )


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
