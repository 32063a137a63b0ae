"""The SQLite connections run statements on the event loop's thread, except where they
would hold it up: a lock held by another connection, and executemany of many rows."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tidings.db import Database
from tidings.kit import sqlite


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    path = tmp_path / "driver.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE items (name TEXT NOT NULL, thread INTEGER)")
    return path


def _names(path: Path) -> list[str]:
    with sqlite3.connect(path) as check:
        return [name for (name,) in check.execute("SELECT name FROM items ORDER BY rowid")]


@contextlib.asynccontextmanager
async def _lock_held_elsewhere(
    db_file: Path, busy_timeout_ms: int
) -> AsyncIterator[tuple[sqlite.InlineConnection, sqlite3.Connection]]:
    """One of our connections, and another connection holding the write lock."""
    url = f"sqlite+aiosqlite:///{db_file}"
    connection = await sqlite.connector(url, busy_timeout_ms=busy_timeout_ms)()
    other = sqlite3.connect(db_file, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield connection, other
    finally:
        other.close()
        await connection.close()


async def _ticks_during(seconds: float) -> int:
    ticks = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


async def test_a_write_waits_for_another_connections_lock_while_the_loop_runs(
    db_file: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{db_file}")
    other = sqlite3.connect(db_file, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO items (name) VALUES ('first, from elsewhere')")

        async def write() -> None:
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO items (name) VALUES ('second')"))

        writing = asyncio.create_task(write())
        ticks = await _ticks_during(0.3)
        assert not writing.done()  # still waiting for the lock ...
        assert ticks >= 10  # ... without holding up the event loop
        other.execute("COMMIT")
        await asyncio.wait_for(writing, 5)
    finally:
        other.close()
        await db.dispose()
    assert _names(db_file) == ["first, from elsewhere", "second"]


async def test_a_lock_held_past_the_busy_timeout_fails_the_statement(db_file: Path) -> None:
    async with _lock_held_elsewhere(db_file, 200) as (connection, other):
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await connection.cursor().execute("BEGIN IMMEDIATE")
        assert time.monotonic() - started >= 0.15
        other.execute("ROLLBACK")
        # the connection is usable again, and waits no longer on its own
        cursor = connection.cursor()
        await cursor.execute("INSERT INTO items (name) VALUES ('after')")
        await connection.commit()
    assert _names(db_file) == ["after"]


@pytest.mark.parametrize(
    ("rows", "on_loop_thread"),
    [(3, True), (sqlite.THREAD_FROM_ROWS, False)],
)
async def test_executemany_of_many_rows_runs_on_a_thread(
    db_file: Path, rows: int, on_loop_thread: bool
) -> None:
    connection = await sqlite.connector(f"sqlite+aiosqlite:///{db_file}", busy_timeout_ms=200)()
    await connection.create_function("current_thread", 0, threading.get_ident)
    try:
        cursor = connection.cursor()
        await cursor.execute("BEGIN")
        await cursor.executemany(
            "INSERT INTO items (name, thread) VALUES (?, current_thread())",
            [(f"row {n}",) for n in range(rows)],
        )
        await connection.commit()
        await cursor.execute("SELECT count(*), count(DISTINCT thread), min(thread) FROM items")
        count, threads, thread = await cursor.fetchone()
    finally:
        await connection.close()
    assert (count, threads) == (rows, 1)
    assert (thread == threading.get_ident()) is on_loop_thread


async def test_a_cancelled_statement_lets_go_of_the_connection_only_when_done(
    db_file: Path,
) -> None:
    async with _lock_held_elsewhere(db_file, 5000) as (connection, other):
        waiting = asyncio.create_task(connection.cursor().execute("BEGIN IMMEDIATE"))
        await asyncio.sleep(0.1)  # now on its thread, waiting for the lock
        waiting.cancel()
        await asyncio.sleep(0.1)
        assert not waiting.done()  # the thread still has the connection
        other.execute("ROLLBACK")
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, 5)
        # the statement the thread ran took effect; the connection is whole
        assert connection.in_transaction
        await connection.rollback()
        await connection.cursor().execute("INSERT INTO items (name) VALUES ('after')")
    assert _names(db_file) == ["after"]


async def test_begin_now_starts_at_once_or_says_the_database_is_locked(db_file: Path) -> None:
    async with _lock_held_elsewhere(db_file, 5000) as (connection, other):
        started = time.monotonic()
        assert connection.begin_now("BEGIN IMMEDIATE") is False  # no waiting on the loop
        assert time.monotonic() - started < 1
        assert not connection.in_transaction
        other.execute("ROLLBACK")
        assert connection.begin_now("BEGIN IMMEDIATE") is True
        assert connection.in_transaction
        await connection.cursor().execute("INSERT INTO items (name) VALUES ('now')")
        await connection.commit()
    assert _names(db_file) == ["now"]
