"""Engines and sessions. A transaction is the unit of work; only boundaries open one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tidings.kit import sqlite
from tidings.kit.jobs import drop_after_commit, take_after_commit

log = logging.getLogger(__name__)

_WRITE_OPTION = "tidings_write"

# how long a statement waits for another process's lock on the SQLite file
SQLITE_BUSY_TIMEOUT_MS = 15_000


def _install_sqlite_settings(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # the connection opens with isolation_level None: SQLAlchemy's "begin" event issues
        # BEGIN itself (see _on_begin); waiting for other processes' locks is the
        # connector's (SQLITE_BUSY_TIMEOUT_MS)
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write transaction takes the write lock up front: a deferred transaction
        # that reads and then writes fails with SQLITE_BUSY when another writer won.
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "DEFERRED"
        # Straight to the connection: as a statement through SQLAlchemy, BEGIN cost a
        # twentieth of a one-recipient send. Only a lock held elsewhere takes the long
        # way, whose cursor waits for it on a thread.
        driver: sqlite.InlineConnection = conn.connection.driver_connection
        if not driver.begin_now(f"BEGIN {mode}"):
            conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """Owns the engine; hands out read and write transactions."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if url.startswith("postgresql+psycopg"):
            # Prepared statements switch to a generic plan after five runs; for the
            # lists of ids Tidings passes (IN with hundreds of values) that plan was
            # 25x slower than a custom one (measured in bench/fanout).
            kwargs["connect_args"] = {"options": "-c plan_cache_mode=force_custom_plan"}
        if self.is_sqlite:
            kwargs["async_creator"] = sqlite.connector(url, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
        else:
            kwargs.update(
                pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_timeout=10
            )
        self.engine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _install_sqlite_settings(self.engine)
        self.write_engine = write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        # SQLite has one writer at a time. Waiting writers in this process queue on an
        # asyncio lock, in order, instead of sleeping in SQLite's busy handler with ever
        # longer naps (which made tail latency climb to seconds under load); writers in
        # other processes still meet busy_timeout.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None
        self._read = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._write = async_sessionmaker(write_engine, expire_on_commit=False, autoflush=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """Commit on success, roll back on error; after-commit jobs run only after a commit."""
        lock = self._write_lock if write else None
        if lock is not None:
            await lock.acquire()
        session = (self._write if write else self._read)()
        try:
            yield session
            await session.commit()
        except BaseException:
            drop_after_commit(session)
            await session.rollback()
            raise
        finally:
            await session.close()
            if lock is not None:
                lock.release()
        for job in take_after_commit(session):
            try:
                result = job()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # a failed hand-over is recovered by the sweeper
                log.exception("after-commit job failed")

    async def ping(self, timeout: float = 2.0) -> None:
        async def _ping() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        await asyncio.wait_for(_ping(), timeout)

    async def dispose(self) -> None:
        await self.engine.dispose()
