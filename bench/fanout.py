"""fanout: one send to 10,000 recipients, until the last inbox row is visible.

Two Tidings shapes, on the same server and database: a bulk request of 10 items of
1,000 explicit ids (``POST /v1/notifications/bulk``, stored before the 202), and a send
to a 10,000-member topic (``POST /v1/notifications`` with ``topic``, expanded by the
embedded runner in batches after the 202). The clock runs from the request's start
until a count of the send's notifications, polled every 20 ms with the raw driver,
reaches 10,000. The baseline writes the same rows in one transaction with the raw
driver: one send, 10,000 notifications, 10,000 in-app deliveries, the 10,000 users' live
counters (Tidings' upsert, returning the seqs taken) and their 20,000 live events
(``notification.created``, ``unread_count``); executemany on SQLite (aiosqlite), COPY on
PostgreSQL (psycopg ``copy.write_row``). A second baseline writes only the send, the
notifications and the deliveries (the baseline of the figures before 2026-12-07).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import httpx
import psycopg

from bench import rows
from bench.harness import (
    TENANT,
    BenchError,
    Database,
    Options,
    Workspace,
    create_database,
    running,
    tidings_server,
    token,
    wait_until,
)
from bench.profiling import Profiler
from bench.report import Figure, ScenarioResult, median
from tidings.kit.ids import uuid7

NAME = "fanout"
TITLE = "one send to 10,000 recipients (bulk ids and topic), until the last inbox row"
RECIPIENTS = 10_000
CHUNK = 1_000
TOPIC = "bench-fanout"
AIM_RATIO = 0.4
POLL_SECONDS = 0.02
TIMEOUT = 180.0
COUNTERS_A_STATEMENT = 250  # users a counter upsert on SQLite, as Tidings writes them


class Counter:
    """Counts a send's notifications with the raw driver, from the benchmark process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sqlite: aiosqlite.Connection | None = None
        self._pg: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> Counter:
        if self.db.kind == "sqlite":
            self._sqlite = await aiosqlite.connect(self.db.dsn, isolation_level=None)
        else:
            self._pg = await psycopg.AsyncConnection.connect(self.db.dsn, autocommit=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()

    async def count(self, send_ids: list[str]) -> int:
        if self._sqlite is not None:
            marks = ", ".join("?" for _ in send_ids)
            sql = f"SELECT count(*) FROM notifications WHERE send_id IN ({marks})"
            async with self._sqlite.execute(sql, send_ids) as cur:
                row = await cur.fetchone()
        else:
            assert self._pg is not None
            cur = await self._pg.execute(
                "SELECT count(*) FROM notifications WHERE send_id = ANY(%s)", [send_ids]
            )
            row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _until_visible(counter: Counter, send_ids: list[str]) -> None:
    await wait_until(
        lambda: counter.count(send_ids),
        lambda n: n >= RECIPIENTS,
        timeout=TIMEOUT,
        interval=POLL_SECONDS,
    )


async def tidings_bulk(client: httpx.AsyncClient, counter: Counter, members: list[str]) -> float:
    items = [
        {
            "recipients": members[i : i + CHUNK],
            "title": "t",
            "body": "b",
            "channels": ["in_app"],
        }
        for i in range(0, len(members), CHUNK)
    ]
    started = time.perf_counter()
    response = await client.post("/v1/notifications/bulk", json={"items": items})
    if response.status_code != 202:
        raise BenchError(f"bulk send: {response.status_code} {response.text[:500]}")
    await _until_visible(counter, [item["id"] for item in response.json()["items"]])
    return time.perf_counter() - started


async def tidings_topic(client: httpx.AsyncClient, counter: Counter) -> float:
    body = {"topic": TOPIC, "title": "t", "body": "b", "channels": ["in_app"]}
    started = time.perf_counter()
    response = await client.post("/v1/notifications", json=body)
    if response.status_code != 202:
        raise BenchError(f"topic send: {response.status_code} {response.text[:500]}")
    await _until_visible(counter, [response.json()["id"]])
    return time.perf_counter() - started


def _baseline_rows(kind: str, members: list[str]) -> tuple[tuple[Any, ...], list[Any], list[Any]]:
    now = datetime.now(UTC)
    send_id = uuid7()
    send = rows.send_row(kind, send_id, TENANT, now, {"title": "t", "body": "b"})
    notifications, deliveries = [], []
    for member in members:
        notification_id = uuid7()
        notifications.append(
            rows.notification_row(kind, notification_id, TENANT, send_id, member, now)
        )
        deliveries.append(
            rows.delivery_row(kind, uuid7(), TENANT, send_id, notification_id, member, now)
        )
    return send, notifications, deliveries


async def baseline(db: Database, members: list[str], *, every_row: bool = True) -> float:
    """The same rows in one transaction (``every_row=False``: the send, notifications
    and deliveries only); the clock includes building the rows."""
    kind = db.kind
    users = sorted(members)
    if kind == "sqlite":
        async with aiosqlite.connect(db.dsn, isolation_level=None) as conn:
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=15000")
            started = time.perf_counter()
            send, notifications, deliveries = _baseline_rows(kind, members)
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute(rows.insert_sql(kind, "sends", rows.SEND_COLUMNS), send)
            await conn.executemany(
                rows.insert_sql(kind, "notifications", rows.NOTIFICATION_COLUMNS), notifications
            )
            await conn.executemany(
                rows.insert_sql(kind, "deliveries", rows.DELIVERY_COLUMNS), deliveries
            )
            if every_row:
                counters: list[Any] = []
                for start in range(0, len(users), COUNTERS_A_STATEMENT):
                    batch = users[start : start + COUNTERS_A_STATEMENT]
                    values = ", ".join("(?, ?, 2, 1)" for _ in batch)
                    params = [value for user in batch for value in (TENANT, user)]
                    async with conn.execute(
                        f"{rows.COUNTERS_INTO} VALUES {values}{rows.COUNTERS_CONFLICT}", params
                    ) as cur:
                        counters += await cur.fetchall()
                await conn.executemany(
                    rows.insert_sql(kind, "live_events", rows.EVENT_COLUMNS),
                    rows.event_rows(TENANT, notifications, counters),
                )
            await conn.execute("COMMIT")
            return time.perf_counter() - started
    async with await psycopg.AsyncConnection.connect(db.dsn) as conn:
        started = time.perf_counter()
        send, notifications, deliveries = _baseline_rows(kind, members)
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(rows.insert_sql(kind, "sends", rows.SEND_COLUMNS), send)
            async with cur.copy(rows.copy_sql("notifications", rows.NOTIFICATION_COLUMNS)) as cp:
                for row in notifications:
                    await cp.write_row(row)
            async with cur.copy(rows.copy_sql("deliveries", rows.DELIVERY_COLUMNS)) as cp:
                for row in deliveries:
                    await cp.write_row(row)
            if every_row:
                await cur.execute(
                    rows.COUNTERS_INTO
                    + " SELECT %s, r, 2, 1 FROM unnest(%s::text[]) AS t(r) ORDER BY r"
                    + rows.COUNTERS_CONFLICT,
                    [TENANT, users],
                )
                counters = await cur.fetchall()
                async with cur.copy(rows.copy_sql("live_events", rows.EVENT_COLUMNS)) as cp:
                    for row in rows.event_rows(TENANT, notifications, counters):
                        await cp.write_row(row)
        return time.perf_counter() - started


async def _subscribe(client: httpx.AsyncClient, members: list[str]) -> None:
    for start in range(0, len(members), CHUNK):
        response = await client.post(
            f"/v1/topics/{TOPIC}/subscribers",
            json={"recipient_ids": members[start : start + CHUNK]},
        )
        if response.status_code != 200:
            raise BenchError(f"subscribe: {response.status_code} {response.text[:500]}")


async def run(ws: Workspace, opts: Options) -> ScenarioResult:
    reps = 1 if opts.quick else 3
    profiler = Profiler(opts.profile_dir)
    result = ScenarioResult(NAME, TITLE, command="")
    members = [f"m{i:05d}" for i in range(RECIPIENTS)]
    for kind in opts.databases:
        db = create_database(ws, kind, "fanout")
        bearer = token(ws, db, "ats", service=True)
        bulk: list[float] = []
        topic: list[float] = []
        base: list[float] = []
        inserts: list[float] = []
        async with (
            running(tidings_server(ws, db)) as server,
            httpx.AsyncClient(
                base_url=server.base_url,
                headers={"Authorization": f"Bearer {bearer}"},
                timeout=TIMEOUT,
            ) as client,
            Counter(db) as counter,
        ):
            started = time.perf_counter()
            await _subscribe(client, members)
            subscribe_seconds = time.perf_counter() - started
            for rep in range(reps):
                task = await profiler.record(f"fanout-bulk-{kind}-{rep}", server.pid, 8)
                bulk.append(await tidings_bulk(client, counter, members))
                await Profiler.finish(task)
                task = await profiler.record(f"fanout-topic-{kind}-{rep}", server.pid, 8)
                topic.append(await tidings_topic(client, counter))
                await Profiler.finish(task)
                base.append(await baseline(db, members))
                inserts.append(await baseline(db, members, every_row=False))
        cmd_base = (
            "aiosqlite executemany, one transaction"
            if kind == "sqlite"
            else "psycopg COPY (write_row), one transaction"
        )
        result.figures += [
            Figure(
                kind,
                "bulk 10 x 1,000 ids",
                "s",
                "lower",
                median(bulk),
                median(base),
                aim_ratio=AIM_RATIO,
                command=f"POST /v1/notifications/bulk, poll count every 20 ms / {cmd_base}",
                samples=bulk,
                baseline_samples=base,
            ),
            Figure(
                kind,
                "topic of 10,000",
                "s",
                "lower",
                median(topic),
                median(base),
                aim_ratio=AIM_RATIO,
                command=f"POST /v1/notifications (topic), poll count every 20 ms / {cmd_base}",
                samples=topic,
                baseline_samples=base,
            ),
            Figure(
                kind,
                "bulk, against notifications and deliveries only",
                "s",
                "lower",
                median(bulk),
                median(inserts),
                command=f"as above / {cmd_base}, without the counters and live events",
                samples=bulk,
                baseline_samples=inserts,
            ),
        ]
        result.notes.append(
            f"{kind}: subscribing the 10,000 members (10 x POST /v1/topics/{{t}}/subscribers, "
            f"not timed) took {subscribe_seconds:.1f}s; rows per second at the median: "
            f"bulk {RECIPIENTS / median(bulk):,.0f}, topic {RECIPIENTS / median(topic):,.0f}, "
            f"baseline {RECIPIENTS / median(base):,.0f} notifications/s (each with its "
            f"delivery row, counter and two live events), "
            f"{RECIPIENTS / median(inserts):,.0f} with their delivery rows only."
        )
    result.notes.append(
        "Each run is a new send to the same 10,000 recipients (created when they were "
        "subscribed), so the tables grow by 40,000 rows per measurement, for every side; "
        "runs alternate bulk, topic, baseline, baseline without counters and events."
    )
    return result
