"""The ingest and inbox baselines: bare FastAPI endpoints running the same SQL raw.

``POST /v1/notifications`` parses the same body and runs, in one transaction on a
migrated Tidings schema, the statements Tidings runs for a literal in-app send to
recipients that exist: the send row; the audience read (the tenant's settings, the
recipients and their preference documents, ``tidings.send.repository.audience``); a
notification and a delivery row per recipient; the upsert of their live counters
(``tidings.realtime.repository.reserve``); their two live events
(``notification.created`` and ``unread_count``). It answers 202 with the body Tidings
answers. What it leaves out is the Python around those statements: the token check,
the tenant cache (one fixed tenant, seeded at start), recipient creation (the
recipients named in ``BENCH_BARE_RECIPIENTS`` are seeded at start), idempotency,
templates and preferences, SQLAlchemy, middleware and the live publication.
With ``BENCH_BARE_STATEMENTS=inserts`` it runs the three inserts only (send,
notifications, deliveries), the narrower baseline the figures used until 2026-12-07.

``GET /v1/me/notifications?unread=true&limit=N`` and
``GET /v1/me/notifications/unread-count`` run the inbox scenario's statements
(``bench.inbox.statements`` and ``bench.inbox.parameters``, "now" taken per request)
for the first recipient of ``BENCH_BARE_RECIPIENTS`` and answer the JSON Tidings
answers: the same item fields and a ``next_cursor``, unsigned here. What they leave
out: the token check, the ORM, cursor signing and middleware.

SQLite: one sqlite3 connection used on the event loop's thread, as Tidings' own
connections are (``tidings.kit.sqlite``; WAL, ``synchronous=NORMAL``, foreign keys on),
each transaction ``BEGIN IMMEDIATE`` under an asyncio lock. PostgreSQL: a psycopg
``AsyncConnectionPool`` of 10 to 20 connections (Tidings' engine: 10 + 10 overflow).

Served with ``uvicorn bench.bare_app:create_app --factory``; configured by
``BENCH_BARE_KIND`` (sqlite|postgresql), ``BENCH_BARE_DSN`` (file or libpq DSN),
``BENCH_BARE_TENANT`` (default ``bare``) and ``BENCH_BARE_RECIPIENTS`` (default ``r1``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from bench import inbox, rows
from tidings.kit.ids import uuid7
from tidings.notification.schemas import InboxItem, InboxPage, UnreadCount

TENANT = "bare"


class SendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipients: list[str] = Field(min_length=1, max_length=1000)
    title: str
    body: str
    channels: list[Literal["in_app"]] = Field(default_factory=lambda: ["in_app"])


class NotificationRef(BaseModel):
    id: str
    recipient_id: str


class Accepted(BaseModel):
    id: str
    status: Literal["accepted"] = "accepted"
    notifications: list[NotificationRef]


# Tidings' audience read, written out (tidings.send.repository._AUDIENCE)
_AUDIENCE = (
    "SELECT {settings}, p.document, r.id, r.name, r.email, r.phone, r.locale, r.timezone,"
    " r.data FROM tenants AS t"
    " LEFT JOIN recipients AS r ON r.tenant_id = t.id AND r.id {ids}"
    " LEFT JOIN preferences AS p ON p.tenant_id = r.tenant_id AND p.recipient_id = r.id"
    " WHERE t.id = {tenant}"
)


def _statements(kind: str) -> tuple[str, str, str]:
    return (
        rows.insert_sql(kind, "sends", rows.SEND_COLUMNS),
        rows.insert_sql(kind, "notifications", rows.NOTIFICATION_COLUMNS),
        rows.insert_sql(kind, "deliveries", rows.DELIVERY_COLUMNS),
    )


def _audience(kind: str, tenant: str, recipients: list[str]) -> tuple[str, list[Any]]:
    if kind == "sqlite":
        marks = ", ".join("?" for _ in recipients)
        statement = _AUDIENCE.format(settings="t.settings", ids=f"IN ({marks})", tenant="?")
        return statement, [*recipients, tenant]
    statement = _AUDIENCE.format(settings="t.settings::text", ids="= ANY(%s)", tenant="%s")
    return statement, [recipients, tenant]


def _counters(kind: str, tenant: str, recipients: list[str]) -> tuple[str, list[Any]]:
    """Two seqs (the item, the count) and one unread item more for each recipient."""
    users = sorted(recipients)
    if kind == "sqlite":
        values = ", ".join("(?, ?, ?, ?)" for _ in users)
        params: list[Any] = []
        for user in users:
            params += (tenant, user, 2, 1)
        return f"{rows.COUNTERS_INTO} VALUES {values}{rows.COUNTERS_CONFLICT}", params
    select = (
        " SELECT %s, r, n, u FROM unnest(%s::text[], %s::bigint[], %s::int[]) AS t(r, n, u)"
        " ORDER BY r"
    )
    return (
        rows.COUNTERS_INTO + select + rows.COUNTERS_CONFLICT,
        [tenant, users, [2] * len(users), [1] * len(users)],
    )


def _rows(
    kind: str, tenant: str, payload: SendBody
) -> tuple[tuple[Any, ...], list[Any], list[Any]]:
    now = datetime.now(UTC)
    send_id = uuid7()
    send = rows.send_row(kind, send_id, tenant, now, payload.model_dump(exclude={"recipients"}))
    notifications, deliveries = [], []
    for recipient in payload.recipients:
        notification_id = uuid7()
        notifications.append(
            rows.notification_row(
                kind,
                notification_id,
                tenant,
                send_id,
                recipient,
                now,
                title=payload.title,
                body=payload.body,
            )
        )
        deliveries.append(
            rows.delivery_row(kind, uuid7(), tenant, send_id, notification_id, recipient, now)
        )
    return send, notifications, deliveries


def _seed_rows(
    kind: str, tenant: str, recipients: list[str]
) -> tuple[str, tuple[Any, ...], str, list[Any]]:
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
        (tenant, json.dumps({}), now),
        recipient_sql,
        [(tenant, r, "{}", now, now) for r in recipients],
    )


def _stamp(kind: str, value: Any) -> datetime:
    """A timestamp as Tidings reads it: aware UTC (SQLite stores naive UTC text)."""
    if kind == "sqlite":
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    stamp: datetime = value
    return stamp.astimezone(UTC)


def _item(kind: str, row: Sequence[Any]) -> InboxItem:
    """The inbox view of a row of ``inbox.ITEM_COLUMNS`` (Tidings' own item model)."""
    values = dict(zip(inbox.ITEM_COLUMNS, row, strict=True))
    if kind == "sqlite":
        values["data"] = json.loads(values["data"])
    values["created_at"] = _stamp(kind, values["created_at"])
    if values["read_at"] is not None:
        values["read_at"] = _stamp(kind, values["read_at"])
    read_at = values["read_at"]
    return InboxItem.model_construct(
        id=values["id"],
        send_id=values["send_id"],
        template=values["template"],
        category=values["category"],
        priority=values["priority"],
        title=values["title"],
        body=values["body"],
        action_url=values["action_url"],
        data=values["data"] or {},
        created_at=values["created_at"],
        read=read_at is not None,
        read_at=read_at,
    )


def _cursor(last: InboxItem) -> str:
    """The position after ``last``, ``[created_at, id]`` as base64url JSON (not signed)."""
    body = json.dumps([last.created_at.isoformat(), last.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def create_app() -> FastAPI:
    kind = os.environ.get("BENCH_BARE_KIND", "sqlite")
    dsn = os.environ["BENCH_BARE_DSN"]
    tenant = os.environ.get("BENCH_BARE_TENANT", TENANT)
    recipients = os.environ.get("BENCH_BARE_RECIPIENTS", "r1").split(",")
    send_sql, notification_sql, delivery_sql = _statements(kind)
    events_sql = rows.insert_sql(kind, "live_events", rows.EVENT_COLUMNS)
    every_statement = os.environ.get("BENCH_BARE_STATEMENTS", "all") != "inserts"
    inbox_sql = inbox.statements(kind)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tenant_sql, tenant_row, recipient_sql, recipient_rows = _seed_rows(kind, tenant, recipients)
        if kind == "sqlite":
            conn = sqlite3.connect(dsn, isolation_level=None, timeout=15)
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA foreign_keys=ON",
            ):
                conn.execute(pragma)
            conn.execute(tenant_sql, tenant_row)
            conn.executemany(recipient_sql, recipient_rows)
            state.update(conn=conn, lock=asyncio.Lock())
            try:
                yield
            finally:
                conn.close()
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
        send, notifications, deliveries = _rows(kind, tenant, payload)
        names = list(dict.fromkeys(payload.recipients))
        audience_sql, audience_params = _audience(kind, tenant, names)
        counters_sql, counters_params = _counters(kind, tenant, names)
        if kind == "sqlite":
            conn = state["conn"]
            async with state["lock"]:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(send_sql, send)
                    if every_statement:
                        conn.execute(audience_sql, audience_params).fetchall()
                    conn.executemany(notification_sql, notifications)
                    conn.executemany(delivery_sql, deliveries)
                    if every_statement:
                        counters = conn.execute(counters_sql, counters_params).fetchall()
                        events = rows.event_rows(
                            tenant, notifications, counters, title=payload.title, body=payload.body
                        )
                        conn.executemany(events_sql, events)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        else:
            async with state["pool"].connection() as conn, conn.transaction():
                await conn.execute(send_sql, send)
                if every_statement:
                    await (await conn.execute(audience_sql, audience_params)).fetchall()
                async with conn.cursor() as cur:
                    await cur.executemany(notification_sql, notifications)
                    await cur.executemany(delivery_sql, deliveries)
                if every_statement:
                    found = await conn.execute(counters_sql, counters_params)
                    counters = await found.fetchall()
                    events = rows.event_rows(
                        tenant, notifications, counters, title=payload.title, body=payload.body
                    )
                    async with conn.cursor() as cur:
                        await cur.executemany(events_sql, events)
        refs = [NotificationRef(id=row[0], recipient_id=row[3]) for row in notifications]
        return Accepted(id=send[0], notifications=refs)

    async def read(name: str, limit: int = inbox.LIMIT) -> list[Any]:
        """Run the inbox statement ``name`` for the first recipient, "now" being now."""
        params = inbox.parameters(
            kind, datetime.now(UTC), tenant=tenant, user=recipients[0], limit=limit
        )[name]
        if kind == "sqlite":
            return state["conn"].execute(inbox_sql[name], params).fetchall()
        async with state["pool"].connection() as conn:
            cur = await conn.execute(inbox_sql[name], params)
            return list(await cur.fetchall())

    @app.get("/v1/me/notifications")
    async def inbox_page(
        unread: bool = False, limit: Annotated[int, Query(ge=1, le=200)] = inbox.LIMIT
    ) -> InboxPage:
        if not unread:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "only unread=true is served here")
        found = await read("page", limit)
        items = [_item(kind, row) for row in found[:limit]]
        return InboxPage(
            items=items, next_cursor=_cursor(items[-1]) if len(found) > limit else None
        )

    @app.get("/v1/me/notifications/unread-count")
    async def unread_count() -> UnreadCount:
        (row,) = await read("count")
        return UnreadCount(count=row[0])

    return app
