"""inbox: a user's unread page and unread count on a table of 1,000,000 notifications.

The table is bulk-loaded with the raw driver (sqlite3 executemany in transactions of
100,000 rows; PostgreSQL COPY, then ANALYZE): 10,000 sends, each to the inbox user and
to ``per_send - 1`` of 9,999 other recipients, so the user has 10,000 items, every
second one read. Tidings answers ``GET /v1/me/notifications?unread=true&limit=50`` and
``GET /v1/me/notifications/unread-count`` to sequential requests of one keep-alive
httpx client. The baseline is the bare FastAPI app of ``bench/bare_app.py`` on the same
database, answering the same two requests of the same client by running ``statements``
(same parameters) through the raw driver (sqlite3 on the event loop's thread as in
Tidings, a psycopg pool): HTTP and JSON
as Tidings, without its auth and ORM. The same statements timed in-process (no HTTP,
no JSON) are reported in the notes, next to the HTTP floor.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from bench import rows
from bench.harness import (
    TENANT,
    BenchError,
    Database,
    Options,
    Workspace,
    bare_server,
    create_database,
    running,
    tidings_server,
    token,
)
from bench.profiling import Profiler
from bench.report import Figure, ScenarioResult, percentile
from tidings.notification.repository import INBOX_COLUMNS

NAME = "inbox"
TITLE = "unread page and unread count of a user with 10,000 items in 1,000,000"
USER = "inbox-user"
USER_ITEMS = 10_000
OTHERS = 9_999
AIM_P99_MS = 20.0
AIM_RATIO = 0.4
WARMUP = 30
LIMIT = 50
# the columns an inbox item shows, in the order Tidings selects them
ITEM_COLUMNS = tuple(column.key for column in INBOX_COLUMNS)
_COLUMNS = ", ".join(f"notifications.{c}" for c in ITEM_COLUMNS)
_OWNED = (
    "notifications.tenant_id = {m} AND notifications.recipient_id = {m} "
    "AND notifications.visible = {true} AND notifications.archived_at IS NULL "
    "AND notifications.created_at <= {m}"
)


def statements(kind: str) -> dict[str, str]:
    """The SQL that SQLAlchemy emits for the two inbox reads (see notification.repository)."""
    if kind == "sqlite":
        owned = _OWNED.format(m="?", true="1")
        limit = "LIMIT ? OFFSET ?"
    else:
        owned = _OWNED.format(m="%s", true="true")
        limit = "LIMIT %s"
    return {
        "page": f"SELECT {_COLUMNS} FROM notifications WHERE {owned} "
        "AND notifications.read_at IS NULL "
        f"ORDER BY notifications.created_at DESC, notifications.id DESC {limit}",
        "count": f"SELECT count(*) AS count_1 FROM notifications WHERE {owned} "
        "AND notifications.read_at IS NULL",
    }


def parameters(
    kind: str, now: datetime, *, tenant: str = TENANT, user: str = USER, limit: int = LIMIT
) -> dict[str, tuple[Any, ...]]:
    """The parameters of ``statements`` for ``user``'s first page of ``limit`` items."""
    stamp = rows.ts(kind, now)
    page: tuple[Any, ...] = (tenant, user, stamp, limit + 1)
    if kind == "sqlite":
        page = (*page, 0)
    return {"page": page, "count": (tenant, user, stamp)}


def _generate(total: int) -> tuple[list[Any], list[Any], list[Any]]:
    """Sends, recipients and notifications rows (as tuples of Python values)."""
    per_send = total // USER_ITEMS
    if per_send < 1 or per_send - 1 > OTHERS:
        raise BenchError(f"cannot lay out {total} notifications")
    start = datetime.now(UTC) - timedelta(days=30)
    others = [f"r{i:05d}" for i in range(OTHERS)]
    sends, notifications = [], []
    cursor = 0
    for s in range(USER_ITEMS):
        created = start + timedelta(seconds=s * 10)
        send_id = f"00000000-0000-7000-8000-{s:012d}"
        sends.append((send_id, created))
        read = created + timedelta(minutes=1) if s % 2 else None
        notifications.append((f"{send_id[:-12]}{s:06d}000000", send_id, USER, created, read))
        for j in range(per_send - 1):
            recipient = others[(cursor + j) % OTHERS]
            notifications.append(
                (f"{send_id[:-12]}{s:06d}{j + 1:06d}", send_id, recipient, created, None)
            )
        cursor += per_send - 1
    return sends, [USER, *others], notifications


def _row(kind: str, n: tuple[Any, ...]) -> tuple[Any, ...]:
    notification_id, send_id, recipient, created, read = n
    return rows.notification_row(
        kind, notification_id, TENANT, send_id, recipient, created, read_at=read
    )


def load_sqlite(db: Database, total: int) -> None:
    sends, recipients, notifications = _generate(total)
    now = rows.ts("sqlite", datetime.now(UTC))
    conn = sqlite3.connect(db.dsn, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.execute(
            "INSERT OR IGNORE INTO tenants (id, settings, created_at) VALUES (?, '{}', ?)",
            (TENANT, now),
        )
        conn.executemany(
            "INSERT INTO recipients (tenant_id, id, data, created_at, updated_at) "
            "VALUES (?, ?, '{}', ?, ?)",
            [(TENANT, r, now, now) for r in recipients],
        )
        conn.executemany(
            rows.insert_sql("sqlite", "sends", rows.SEND_COLUMNS),
            [rows.send_row("sqlite", s, TENANT, created, {}) for s, created in sends],
        )
        conn.execute("COMMIT")
        sql = rows.insert_sql("sqlite", "notifications", rows.NOTIFICATION_COLUMNS)
        for start in range(0, len(notifications), 100_000):
            conn.execute("BEGIN")
            conn.executemany(
                sql, (_row("sqlite", n) for n in notifications[start : start + 100_000])
            )
            conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def load_postgresql(db: Database, total: int) -> None:
    sends, recipients, notifications = _generate(total)
    now = datetime.now(UTC)
    with psycopg.connect(db.dsn) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO tenants (id, settings, created_at) VALUES (%s, '{}', %s) "
                "ON CONFLICT DO NOTHING",
                (TENANT, now),
            )
            with cur.copy(
                "COPY recipients (tenant_id, id, data, created_at, updated_at) FROM STDIN"
            ) as cp:
                cp.write("".join(rows.copy_text((TENANT, r, "{}", now, now)) for r in recipients))
            with cur.copy(rows.copy_sql("sends", rows.SEND_COLUMNS)) as cp:
                cp.write(
                    "".join(
                        rows.copy_text(rows.send_row("postgresql", s, TENANT, created, {}))
                        for s, created in sends
                    )
                )
            with cur.copy(rows.copy_sql("notifications", rows.NOTIFICATION_COLUMNS)) as cp:
                for start in range(0, len(notifications), 50_000):
                    buffer = io.StringIO()
                    for n in notifications[start : start + 50_000]:
                        buffer.write(rows.copy_text(_row("postgresql", n)))
                    cp.write(buffer.getvalue())
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE notifications")


def _page_ok(body: Any) -> None:
    if len(body["items"]) != LIMIT or any(i["read"] for i in body["items"]):
        raise BenchError("the unread page is not 50 unread items")


def _count_ok(body: Any) -> None:
    if body["count"] != USER_ITEMS // 2:
        raise BenchError(f"unread count {body['count']}, not {USER_ITEMS // 2}")


async def _time_http(
    client: httpx.AsyncClient, path: str, count: int, check: Callable[[Any], None]
) -> list[float]:
    samples = []
    for i in range(WARMUP + count):
        started = time.perf_counter()
        response = await client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise BenchError(f"GET {path}: {response.status_code} {response.text[:300]}")
        if i == 0:
            check(response.json())
        if i >= WARMUP:
            samples.append(elapsed)
    return samples


async def _inbox_samples(client: httpx.AsyncClient, count: int) -> dict[str, list[float]]:
    """Both reads over HTTP, one after the other, through ``client``."""
    return {
        "page": await _time_http(
            client, f"/v1/me/notifications?unread=true&limit={LIMIT}", count, _page_ok
        ),
        "count": await _time_http(client, "/v1/me/notifications/unread-count", count, _count_ok),
    }


async def _time_raw(run_once: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    samples = []
    for i in range(WARMUP + count):
        started = time.perf_counter()
        await run_once()
        elapsed = (time.perf_counter() - started) * 1000
        if i >= WARMUP:
            samples.append(elapsed)
    return samples


async def raw_samples(db: Database, count: int) -> dict[str, list[float]]:
    sql = statements(db.kind)
    params = parameters(db.kind, datetime.now(UTC))
    out: dict[str, list[float]] = {}
    if db.kind == "sqlite":
        conn = sqlite3.connect(db.dsn, isolation_level=None)
        try:

            def query(name: str) -> Callable[[], Awaitable[Any]]:
                async def once() -> Any:
                    return conn.execute(sql[name], params[name]).fetchall()

                return once

            for name in sql:
                out[name] = await _time_raw(query(name), count)
        finally:
            conn.close()
        return out
    async with await psycopg.AsyncConnection.connect(db.dsn, autocommit=True) as pg:

        def pg_query(name: str) -> Callable[[], Awaitable[Any]]:
            async def once() -> Any:
                cur = await pg.execute(sql[name], params[name])
                return await cur.fetchall()

            return once

        for name in sql:
            out[name] = await _time_raw(pg_query(name), count)
    return out


async def explain(db: Database) -> dict[str, str]:
    """The query plans, to say which index each read uses."""
    sql = statements(db.kind)
    params = parameters(db.kind, datetime.now(UTC))
    plans = {}
    if db.kind == "sqlite":
        with contextlib.closing(sqlite3.connect(db.dsn)) as conn:
            for name in sql:
                found = conn.execute("EXPLAIN QUERY PLAN " + sql[name], params[name]).fetchall()
                plans[name] = "; ".join(str(r[-1]) for r in found)
        return plans
    async with await psycopg.AsyncConnection.connect(db.dsn, autocommit=True) as pg:
        for name in sql:
            cur = await pg.execute("EXPLAIN " + sql[name], params[name])
            lines = [str(r[0]).strip() for r in await cur.fetchall()]
            plans[name] = "; ".join(line for line in lines if "->" in line or "Scan" in line)[:300]
    return plans


async def run(ws: Workspace, opts: Options) -> ScenarioResult:
    total = 100_000 if opts.quick else 1_000_000
    count = 200 if opts.quick else 500
    profiler = Profiler(opts.profile_dir)
    result = ScenarioResult(NAME, TITLE, command="")
    for kind in opts.databases:
        db = create_database(ws, kind, "inbox")
        started = time.perf_counter()
        (load_sqlite if kind == "sqlite" else load_postgresql)(db, total)
        load_seconds = time.perf_counter() - started
        bearer = token(ws, db, USER, service=False)
        raw = await raw_samples(db, count)
        async with (
            running(tidings_server(ws, db)) as server,
            httpx.AsyncClient(
                base_url=server.base_url, headers={"Authorization": f"Bearer {bearer}"}
            ) as client,
        ):
            task = await profiler.record(f"inbox-{kind}", server.pid, 10)
            ours = await _inbox_samples(client, count)
            await Profiler.finish(task)
            floor = await _time_http(client, "/healthz", count, lambda _body: None)
        async with (
            running(bare_server(db, BENCH_BARE_TENANT=TENANT, BENCH_BARE_RECIPIENTS=USER)) as bare,
            httpx.AsyncClient(base_url=bare.base_url) as client,
        ):
            baseline = await _inbox_samples(client, count)
        plans = await explain(db)
        labels = {
            "page": f"GET /v1/me/notifications?unread=true&limit={LIMIT}",
            "count": "GET /v1/me/notifications/unread-count",
        }
        driver = "sqlite3" if kind == "sqlite" else "psycopg"
        for name, label in labels.items():
            cmd = (
                f"{count} sequential {label} (httpx, keep-alive) / same SQL via {driver} "
                "behind bench.bare_app (uvicorn), same client"
            )
            for pct in (50, 99):
                result.figures.append(
                    Figure(
                        kind,
                        f"{name} p{pct}",
                        "ms",
                        "lower",
                        percentile(ours[name], pct),
                        percentile(baseline[name], pct),
                        aim_ratio=AIM_RATIO if pct == 50 else None,
                        aim_value=AIM_P99_MS if pct == 99 else None,
                        command=cmd,
                    )
                )
        result.notes.append(
            f"{kind}: {total:,} notifications loaded in {load_seconds:.0f}s; plans: "
            + "; ".join(f"{name}: `{plan}`" for name, plan in plans.items())
        )
        result.notes.append(
            f"{kind}: the same SQL in-process through "
            + ("sqlite3" if kind == "sqlite" else "psycopg AsyncConnection")
            + " (no HTTP, no JSON): "
            + "; ".join(
                f"{name} p50 {percentile(raw[name], 50):.2f} ms, "
                f"p99 {percentile(raw[name], 99):.2f} ms"
                for name in raw
            )
            + "."
        )
        result.notes.append(
            f"{kind}: HTTP floor, `GET /healthz` through the same client: p50 "
            f"{percentile(floor, 50):.2f} ms, p99 {percentile(floor, 99):.2f} ms."
        )
    result.notes.append(
        "The ratio compares two HTTP round trips through the same client: Tidings (uvicorn, "
        "auth, ORM, JSON) and the bare app (uvicorn, the same SQL with the raw driver, JSON, "
        "no auth); p50 carries the ratio aim, p99 the absolute aim."
    )
    return result
