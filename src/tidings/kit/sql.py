"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, Insert, Select, Table, and_, insert, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from tidings.kit.types import JSONValue, UTCDateTime


def dialect_insert(session: AsyncSession, table: Table | Any) -> Any:
    """An INSERT that supports ON CONFLICT on the session's dialect."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# From this many rows on, an insert skips SQLAlchemy's per-row parameter handling (about
# half the time of the thousands of rows of a bulk or topic send): PostgreSQL takes the
# rows through COPY (twice as fast as pipelined INSERTs for many rows, slower for a few),
# SQLite through the driver's executemany.
DIRECT_FROM_ROWS = 200

_INSERTS: dict[str, Insert] = {}


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (every row with the same keys) in the session's transaction.

    Each value goes through its column type's bind processing, as in any INSERT; large
    batches go straight to the driver (see ``DIRECT_FROM_ROWS``).
    """
    if not rows:
        return
    if len(rows) < DIRECT_FROM_ROWS:
        if table.name not in _INSERTS:
            _INSERTS[table.name] = insert(table)
        await session.execute(_INSERTS[table.name], rows)
        return
    connection = await session.connection()
    dialect = connection.dialect
    columns = list(rows[0])
    plan = [(name, _processor(table.c[name].type, dialect)) for name in columns]
    values = [[process(row[name]) for name, process in plan] for row in rows]
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    quote = dialect.identifier_preparer.quote
    # the table's and columns' names come from the metadata, never from a request
    target = f"{quote(table.name)} ({', '.join(quote(name) for name in columns)})"
    if dialect.name == "postgresql":
        async with driver.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
            for row in values:
                await copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    cursor = driver.cursor()
    try:
        await cursor.executemany(f"INSERT INTO {target} VALUES ({marks})", values)  # noqa: S608
    finally:
        await cursor.close()


def _processor(column_type: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """The column's bind processing, remembered through one batch where values repeat:
    the rows of a send share their timestamps and often one JSON document."""
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return _same
    memo: dict[Any, Any] = {}
    if isinstance(column_type, UTCDateTime):
        # equal instants are stored alike (in UTC), whatever zone they came in
        def by_value(value: Any) -> Any:
            try:
                return memo[value]
            except KeyError:
                memo[value] = stored = process(value)
                return stored

        return by_value
    if isinstance(column_type, JSONValue):
        # the same document object (kept alive by its rows while the batch is built)
        def by_identity(value: Any) -> Any:
            key = id(value)
            try:
                return memo[key]
            except KeyError:
                memo[key] = stored = process(value)
                return stored

        return by_identity
    return process


def _same(value: Any) -> Any:
    return value


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
