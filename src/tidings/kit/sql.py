"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, Select, Table, and_, or_
from sqlalchemy import exc as sa_exc
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


# From this many rows on, PostgreSQL takes an insert through COPY: about twice as fast as
# pipelined INSERTs for the thousands of rows of a bulk or topic send, slower for a few.
COPY_FROM_ROWS = 200


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (every row with the same keys) in the session's transaction.

    The rows go to the driver directly (INSERT, or COPY for many rows on PostgreSQL):
    SQLAlchemy's statement execution costs more than the insert itself for the rows of a
    send. Each value still goes through its column type's bind processing, as in any
    INSERT.
    """
    if not rows:
        return
    dialect, driver = await _driver_connection(session)
    plan = _plan(table, dialect, tuple(rows[0]))
    by_copy = dialect.name == "postgresql" and len(rows) >= COPY_FROM_ROWS
    if len(rows) == 1:
        steps = plan.steps
    else:
        processors = plan.copy_processors if by_copy else plan.processors
        steps = [_remembered(*entry) for entry in processors]
    values = [[process(row[name]) for name, process in steps] for row in rows]
    with _as_sqlalchemy_errors(dialect, plan.insert):
        if dialect.name == "postgresql":
            if by_copy:
                async with driver.cursor() as cursor, cursor.copy(plan.copy) as copy:
                    for row in values:
                        await copy.write_row(row)
                return
            async with driver.cursor() as cursor:
                await cursor.executemany(plan.insert, values)
            return
        cursor = driver.cursor()
        try:
            await cursor.executemany(plan.insert, values)
        finally:
            await cursor.close()


async def fetch_rows(session: AsyncSession, statement: str, parameters: Sequence[Any]) -> list[Any]:
    """Run ``statement`` (in the driver's own paramstyle: ``?`` on SQLite, ``%s`` on
    PostgreSQL) on the session's transaction and return its rows, as the driver gives
    them: for the few statements of a send that SQLAlchemy's execution would cost more
    than the statement itself."""
    dialect, driver = await _driver_connection(session)
    with _as_sqlalchemy_errors(dialect, statement):
        if dialect.name == "postgresql":
            async with driver.cursor() as cursor:
                await cursor.execute(statement, parameters)
                return list(await cursor.fetchall())
        cursor = driver.cursor()
        try:
            await cursor.execute(statement, parameters)
            return list(await cursor.fetchall())
        finally:
            await cursor.close()


@contextmanager
def _as_sqlalchemy_errors(dialect: Dialect, statement: str) -> Iterator[None]:
    """Raise the driver's errors as SQLAlchemy raises them (IntegrityError,
    OperationalError, ...): the API answers those with a 409 or a 503."""
    base = dialect.loaded_dbapi.Error
    try:
        yield
    except base as exc:
        raise sa_exc.DBAPIError.instance(
            statement,
            None,
            exc,
            base,
            dialect=dialect,
            connection_invalidated=dialect.is_disconnect(exc, None, None),
        ) from exc


def column_reader(session: AsyncSession, column: Any) -> Callable[[Any], Any]:
    """How ``column``'s type reads a value the driver returned (for ``fetch_rows``)."""
    dialect = session.get_bind().dialect
    key = (dialect.name, column.table.name, column.name)
    read = _READERS.get(key)
    if read is None:
        processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
        read = _READERS[key] = _same if processor is None else processor
    return read


_READERS: dict[tuple[str, str, str], Callable[[Any], Any]] = {}


_DRIVER = "tidings.driver_connection"


async def _driver_connection(session: AsyncSession) -> tuple[Dialect, Any]:
    """The dialect and the driver's connection of the session's transaction, kept with
    the session for that transaction (asking SQLAlchemy again costs two hops through its
    greenlet, more than an insert of a few rows)."""
    kept = session.info.get(_DRIVER)
    if kept is not None and kept[0] is session.sync_session.get_transaction():
        return kept[1], kept[2]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    transaction = session.sync_session.get_transaction()
    session.info[_DRIVER] = (transaction, connection.dialect, raw.driver_connection)
    return connection.dialect, raw.driver_connection


@dataclass(frozen=True)
class _InsertPlan:
    insert: str
    copy: str
    # per column: its name, its bind processing, and how a batch remembers its results
    processors: list[tuple[str, Callable[[Any], Any], str]]
    steps: list[tuple[str, Callable[[Any], Any]]]  # name and processing, for one row
    # the same for COPY: JSON documents as text (the INSERT's processing wraps each one
    # for the driver, which serialized it again for every row: a send's rows share
    # their data document)
    copy_processors: list[tuple[str, Callable[[Any], Any], str]]


_PLANS: dict[tuple[str, str, tuple[str, ...]], _InsertPlan] = {}


def _plan(table: Table, dialect: Dialect, columns: tuple[str, ...]) -> _InsertPlan:
    key = (dialect.name, table.name, columns)
    plan = _PLANS.get(key)
    if plan is None:
        quote = dialect.identifier_preparer.quote
        # the table's and columns' names come from the metadata, never from a request
        target = f"{quote(table.name)} ({', '.join(quote(name) for name in columns)})"
        mark = "%s" if dialect.name == "postgresql" else "?"
        processors = [(name, *_processor(table.c[name].type, dialect)) for name in columns]
        copy_processors = [
            (name, *_json_text(dialect))
            if isinstance(table.c[name].type, JSONValue)
            else (name, process, how)
            for name, process, how in processors
        ]
        plan = _PLANS[key] = _InsertPlan(
            insert=f"INSERT INTO {target} VALUES ({', '.join(mark for _ in columns)})",  # noqa: S608
            copy=f"COPY {target} FROM STDIN",
            processors=processors,
            steps=[(name, process) for name, process, _ in processors],
            copy_processors=copy_processors,
        )
    return plan


def _json_text(dialect: Dialect) -> tuple[Callable[[Any], Any], str]:
    """A JSON document as the text COPY takes (None: SQL NULL, as ``JSONValue`` stores it),
    with the engine's serializer; remembered per document object through a batch."""
    dumps: Callable[[Any], str] = getattr(dialect, "_json_serializer", None) or json.dumps

    def text(value: Any) -> str | None:
        return None if value is None else dumps(value)

    return text, "identity"


def _processor(column_type: TypeEngine[Any], dialect: Dialect) -> tuple[Callable[[Any], Any], str]:
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return _same, ""
    if isinstance(column_type, UTCDateTime):
        return process, "value"  # equal instants are stored alike (in UTC), whatever zone
    if isinstance(column_type, JSONValue):
        return process, "identity"  # the same document object, kept alive by its rows
    return process, ""


def _remembered(
    name: str, process: Callable[[Any], Any], how: str
) -> tuple[str, Callable[[Any], Any]]:
    """The bind processing of one column through one batch, where values repeat: the rows
    of a send share their timestamps and often one JSON document."""
    if not how:
        return name, process
    memo: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        key = value if how == "value" else id(value)
        try:
            return memo[key]
        except KeyError:
            memo[key] = stored = process(value)
            return stored

    return name, remembered


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
