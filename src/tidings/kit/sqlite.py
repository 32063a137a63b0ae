"""SQLite for the async engine, run on the event loop's own thread.

SQLAlchemy's asyncio SQLite dialect drives ``aiosqlite``, which runs every call of a
connection (create a cursor, execute, fetch, close) on a thread of its own and hands the
result back through the event loop: four hand-overs per statement. A statement on a local
file takes tens of microseconds; the hand-overs took a third of a send's time.

:func:`connector` returns an ``async_creator`` for ``create_async_engine`` whose
connections have aiosqlite's interface but run each call directly. Two cases go to a
thread instead, so that the loop is not held up:

- the database is locked by another process (a CLI command, a second server): the
  connection itself never waits (``busy_timeout`` 0); the statement is run again on a
  thread that waits up to ``busy_timeout_ms``. Writers of this process never meet this:
  they queue on an asyncio lock (see :class:`tidings.db.Database`);
- ``executemany`` of ``THREAD_FROM_ROWS`` rows or more (a fan-out of thousands of rows).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

T = TypeVar("T")

# from this many rows on, an executemany runs on a thread (the loop keeps serving)
THREAD_FROM_ROWS = 500


def connector(url: str, *, busy_timeout_ms: int) -> Callable[[], Awaitable[InlineConnection]]:
    """An ``async_creator`` opening the database of ``url`` (``sqlite+aiosqlite:///...``)."""
    parsed = make_url(url)
    (database, *_), options = parsed.get_dialect()().create_connect_args(parsed)
    uri = bool(options.get("uri", False))

    async def connect() -> InlineConnection:
        # the connection never waits for a lock itself; isolation_level None lets BEGIN be
        # issued explicitly (tidings.db); pooled connections may be closed by another thread
        connection = sqlite3.connect(
            database, timeout=0, isolation_level=None, check_same_thread=False, uri=uri
        )
        return InlineConnection(connection, busy_timeout_ms)

    return connect


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


class InlineConnection:
    """The part of ``aiosqlite.Connection`` SQLAlchemy's adapter uses."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout_ms: int) -> None:
        self._conn = connection
        self._busy_timeout_ms = busy_timeout_ms
        self._open = True

    @property
    def _connection(self) -> sqlite3.Connection | None:
        """The open sqlite3 connection, None once closed (the adapter checks it)."""
        return self._conn if self._open else None

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` now; if the database is locked, again on a thread that waits for it."""
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        return await self.off_loop(call)

    async def off_loop(self, call: Callable[[], T]) -> T:
        """``call()`` on a thread, waiting up to the busy timeout for another's lock.

        A cancelled caller still waits for the thread to finish before it goes on: the
        connection must not be used (rolled back, closed) while the thread holds it.
        """
        running = asyncio.ensure_future(asyncio.to_thread(self._waiting, call))
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            await asyncio.wait([running])
            if not running.cancelled():
                running.exception()  # seen: the caller is gone, the cancellation goes on
            raise

    def _waiting(self, call: Callable[[], T]) -> T:
        self._conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        try:
            return call()
        finally:
            self._conn.execute("PRAGMA busy_timeout=0")

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def cursor(self) -> InlineCursor:
        return InlineCursor(self, self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        cursor = self.cursor()
        await cursor.execute(sql, parameters)
        return cursor

    def begin_now(self, statement: str) -> bool:
        """Run ``statement`` (a BEGIN) at once, from synchronous code such as SQLAlchemy's
        ``begin`` event; False when the database is locked by another connection, which
        leaves the caller to issue it through the cursor (that waits on a thread)."""
        try:
            self._conn.execute(statement)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            return False
        return True

    async def commit(self) -> None:
        await self.run(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        self._open = False
        self._conn.close()


class InlineCursor:
    """The part of ``aiosqlite.Cursor`` SQLAlchemy's adapter uses."""

    def __init__(self, owner: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._owner = owner
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        cursor = self._cursor
        await self._owner.run(lambda: cursor.execute(sql, parameters or ()))
        return self

    async def executemany(self, sql: str, rows: Iterable[Any]) -> InlineCursor:
        batch: Sequence[Any] = rows if isinstance(rows, Sequence) else list(rows)
        cursor = self._cursor
        if len(batch) >= THREAD_FROM_ROWS:
            await self._owner.off_loop(lambda: cursor.executemany(sql, batch))
        else:
            await self._owner.run(lambda: cursor.executemany(sql, batch))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()
