"""The ingest baseline: a bare FastAPI endpoint writing the same rows with the raw driver.

``POST /v1/notifications`` parses the same body and inserts one send row, one
notification row and one delivery row per recipient into a migrated Tidings schema,
in one transaction, then answers 202. What it leaves out is what Tidings adds: the
token check, tenants (one fixed tenant, seeded at start), recipient lookup and
creation (the recipients named in ``BENCH_BARE_RECIPIENTS`` are seeded at start),
idempotency, templates, the ORM, middleware and the outbox hand-over.

SQLite: one aiosqlite connection (WAL, ``synchronous=NORMAL``, foreign keys on), each
transaction ``BEGIN IMMEDIATE`` under an asyncio lock. PostgreSQL: a psycopg
``AsyncConnectionPool`` of 10 to 20 connections (Tidings' engine: 10 + 10 overflow).

Served with ``uvicorn bench.bare_app:create_app --factory``; configured by
``BENCH_BARE_KIND`` (sqlite|postgresql) and ``BENCH_BARE_DSN`` (file or libpq DSN).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI, status
from pydantic import BaseModel, ConfigDict, Field

from bench import rows
from tidings.kit.ids import uuid7

TENANT = "bare"


class SendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipients: list[str] = Field(min_length=1, max_length=1000)
    title: str
    body: str
    channels: list[Literal["in_app"]] = Field(default_factory=lambda: ["in_app"])


class Accepted(BaseModel):
    id: str


def _statements(kind: str) -> tuple[str, str, str]:
    return (
        rows.insert_sql(kind, "sends", rows.SEND_COLUMNS),
        rows.insert_sql(kind, "notifications", rows.NOTIFICATION_COLUMNS),
        rows.insert_sql(kind, "deliveries", rows.DELIVERY_COLUMNS),
    )


def _rows(kind: str, payload: SendBody) -> tuple[tuple[Any, ...], list[Any], list[Any]]:
    now = datetime.now(UTC)
    send_id = uuid7()
    send = rows.send_row(kind, send_id, TENANT, now, payload.model_dump(exclude={"recipients"}))
    notifications, deliveries = [], []
    for recipient in payload.recipients:
        notification_id = uuid7()
        notifications.append(
            rows.notification_row(
                kind,
                notification_id,
                TENANT,
                send_id,
                recipient,
                now,
                title=payload.title,
                body=payload.body,
            )
        )
        deliveries.append(
            rows.delivery_row(kind, uuid7(), TENANT, send_id, notification_id, recipient, now)
        )
    return send, notifications, deliveries


def _seed_rows(kind: str, recipients: list[str]) -> tuple[str, tuple[Any, ...], str, list[Any]]:
    now = rows.ts(kind, datetime.now(UTC))
    conflict = " ON CONFLICT DO NOTHING"
    mark = "?" if kind == "sqlite" else "%s"
    tenant_sql = (
        f"INSERT INTO tenants (id, settings, templates_seeded_at, created_at) "
        f"VALUES ({mark}, {mark}, NULL, {mark})" + conflict
    )
    recipient_sql = (
        "INSERT INTO recipients (tenant_id, id, data, created_at, updated_at) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})" + conflict
    )
    return (
        tenant_sql,
        (TENANT, json.dumps({}), now),
        recipient_sql,
        [(TENANT, r, "{}", now, now) for r in recipients],
    )


def create_app() -> FastAPI:
    kind = os.environ.get("BENCH_BARE_KIND", "sqlite")
    dsn = os.environ["BENCH_BARE_DSN"]
    recipients = os.environ.get("BENCH_BARE_RECIPIENTS", "r1").split(",")
    send_sql, notification_sql, delivery_sql = _statements(kind)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tenant_sql, tenant_row, recipient_sql, recipient_rows = _seed_rows(kind, recipients)
        if kind == "sqlite":
            import aiosqlite

            conn = await aiosqlite.connect(dsn, isolation_level=None)
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA busy_timeout=15000",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA foreign_keys=ON",
            ):
                await conn.execute(pragma)
            await conn.execute(tenant_sql, tenant_row)
            await conn.executemany(recipient_sql, recipient_rows)
            state.update(conn=conn, lock=asyncio.Lock())
            try:
                yield
            finally:
                await conn.close()
        else:
            from psycopg_pool import AsyncConnectionPool

            pool = AsyncConnectionPool(dsn, min_size=10, max_size=20, open=False)
            await pool.open(wait=True, timeout=30)
            async with pool.connection() as conn:
                await conn.execute(tenant_sql, tenant_row)
                async with conn.cursor() as cur:
                    await cur.executemany(recipient_sql, recipient_rows)
            state.update(pool=pool)
            try:
                yield
            finally:
                await pool.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/notifications", status_code=status.HTTP_202_ACCEPTED)
    async def create(payload: SendBody) -> Accepted:
        send, notifications, deliveries = _rows(kind, payload)
        if kind == "sqlite":
            conn = state["conn"]
            async with state["lock"]:
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    await conn.execute(send_sql, send)
                    await conn.executemany(notification_sql, notifications)
                    await conn.executemany(delivery_sql, deliveries)
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")
        else:
            async with state["pool"].connection() as conn, conn.transaction():
                await conn.execute(send_sql, send)
                async with conn.cursor() as cur:
                    await cur.executemany(notification_sql, notifications)
                    await cur.executemany(delivery_sql, deliveries)
        return Accepted(id=send[0])

    return app
