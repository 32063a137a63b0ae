"""celery_drain: 2 ``tidings worker`` processes drain a backlog of in-app + e-mail deliveries.

Distributed mode on a PostgreSQL database of the bench's own, broker db 12 of the local
Redis. N/2 recipients with e-mail addresses are created, then, with no worker running,
one ``tidings serve`` accepts a bulk send of a literal notification on the channels
in_app and email to all of them: N deliveries wait in the broker (100 ids per task, as
Tidings publishes them). The clock starts when 2 ``tidings worker --concurrency 2``
processes are started and stops when all N deliveries are ``delivered``/``sent`` in the
database (the e-mails go to an aiosmtpd sink process, as in the email scenario).
Baseline, same run, same broker and concurrency: N no-op tasks of ``bench/noop_app.py``
enqueued first, then 2 ``celery -A bench.noop_app worker --concurrency 2`` processes
started, timed until the queue and its unacked set are empty. Both times include the
workers' start-up.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import httpx
import psycopg

from bench.email import POOL, SENDER, _create_recipients
from bench.harness import (
    HOST,
    BenchError,
    Options,
    Workspace,
    create_database,
    running,
    tidings_env,
    tidings_server,
    token,
)
from bench.live import (
    REDIS_BROKER_URL,
    Background,
    flush_broker,
    pythonpath,
    redis_client,
    tidings_worker,
)
from bench.report import Figure, ScenarioResult, median, rate_figure
from bench.sink import SinkProcess

NAME = "celery_drain"
TITLE = "Celery drain: 2 workers x concurrency 2, in-app + e-mail backlog vs no-op tasks"
WORKERS = 2
CONCURRENCY = 2
AIM_RATIO = 0.5
TIMEOUT = 240.0
QUEUES = ("tidings.in_app", "tidings.email", "tidings.default")


async def _statuses(dsn: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status")
        return {str(s): int(c) for s, c in await cur.fetchall()}


async def _wait_enqueued(min_tasks: int, queues: tuple[str, ...]) -> int:
    """Until the broker holds at least ``min_tasks`` and the count stopped moving."""
    client = redis_client(REDIS_BROKER_URL)
    deadline = time.monotonic() + 60
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        total = sum(int(client.llen(q)) for q in queues)
        if total != last:
            last, stable_since = total, time.monotonic()
        elif total >= min_tasks and time.monotonic() - stable_since > 1.0:
            return total
        await asyncio.sleep(0.05)
    raise BenchError(f"the broker holds {last} tasks, expected at least {min_tasks}")


async def _tidings_round(
    ws: Workspace, n: int, sink: SinkProcess, rep: int
) -> tuple[float, int, dict[str, int]]:
    flush_broker()
    db = create_database(ws, "postgresql", f"celery-drain-{rep}")
    smtp = {
        "TIDINGS_BROKER_URL": REDIS_BROKER_URL,
        "TIDINGS_SMTP_HOST": HOST,
        "TIDINGS_SMTP_PORT": str(sink.port),
        "TIDINGS_SMTP_STARTTLS": "false",
        "TIDINGS_SMTP_POOL_SIZE": str(POOL),
        "TIDINGS_SMTP_FROM": SENDER,
    }
    bearer = token(ws, db, "ats", service=True)
    people = n // 2
    async with (
        running(tidings_server(ws, db, **smtp)) as server,
        httpx.AsyncClient(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=120.0,
        ) as client,
    ):
        await _create_recipients(client, people)
        ids = [f"e{i:05d}" for i in range(people)]
        items = [
            {
                "recipients": ids[i : i + 1000],
                "title": "Your application was received",
                "body": "Thank you for applying. We will be in touch within a week.",
                "channels": ["in_app", "email"],
            }
            for i in range(0, people, 1000)
        ]
        response = await client.post("/v1/notifications/bulk", json={"items": items})
        if response.status_code not in (200, 201, 202):
            raise BenchError(f"bulk send: {response.status_code} {response.text[:300]}")
        tasks = await _wait_enqueued(1, QUEUES)
    before = await _statuses(db.dsn)
    if sum(before.values()) != n:
        raise BenchError(f"expected {n} deliveries, the database has {before}")
    sent_before = sink.received
    workers = []
    for i in range(WORKERS):
        wdir = ws.dir(f"celery-drain-worker{i}")
        env = tidings_env(ws, db, TIDINGS_DATA_DIR=str(wdir), **smtp)
        workers.append(tidings_worker(f"worker{i}", env, wdir, CONCURRENCY))
    try:
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + TIMEOUT
        while True:
            statuses = await _statuses(db.dsn)
            done = statuses.get("delivered", 0) + statuses.get("sent", 0)
            if done >= n:
                break
            if statuses.get("failed", 0):
                raise BenchError(f"deliveries failed: {statuses}\n{workers[0].log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"after {TIMEOUT:.0f}s: {statuses}\n{workers[0].log_tail()}")
            for worker in workers:
                worker.check()
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.stop()
        flush_broker()
    if sink.received - sent_before < people:
        raise BenchError(f"the sink got {sink.received - sent_before} of {people} e-mails")
    return elapsed, tasks, before


async def _noop_round(ws: Workspace, n: int) -> float:
    from bench import noop_app

    flush_broker()
    noop_app.app.conf.broker_url = REDIS_BROKER_URL
    with noop_app.app.connection_for_write() as conn, conn.Producer() as producer:
        for i in range(n):
            noop_app.noop.apply_async((i,), producer=producer)
    await _wait_enqueued(n, (noop_app.QUEUE,))
    client = redis_client(REDIS_BROKER_URL)
    env = {**os.environ, "PYTHONPATH": pythonpath(), "BENCH_NOOP_BROKER": REDIS_BROKER_URL}
    workers = []
    for i in range(WORKERS):
        wdir = ws.dir(f"noop-worker{i}")
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.noop_app",
            "worker",
            "--queues",
            noop_app.QUEUE,
            "--concurrency",
            str(CONCURRENCY),
            "--pool",
            "prefork",
            "--loglevel",
            "WARNING",
            "--hostname",
            f"noop{i}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
        workers.append(Background(f"noop{i}", argv, env, wdir))
    try:
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + TIMEOUT
        while True:
            waiting = int(client.llen(noop_app.QUEUE)) + int(client.hlen("unacked"))
            if waiting == 0:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"no-op drain: {waiting} left\n{workers[0].log_tail()}")
            for worker in workers:
                worker.check()
            await asyncio.sleep(0.02)
        return time.perf_counter() - started
    finally:
        for worker in workers:
            worker.stop()
        flush_broker()


async def run(ws: Workspace, opts: Options) -> ScenarioResult:
    if "postgresql" not in opts.databases:
        raise BenchError("celery_drain needs PostgreSQL (--database postgresql or both)")
    n = 200 if opts.quick else 2000
    reps = 1 if opts.quick else 3
    result = ScenarioResult(NAME, TITLE, command="")
    sink = SinkProcess().start()
    ws.on_close(sink.stop)
    ours: list[float] = []
    base: list[float] = []
    tasks = 0
    before: dict[str, int] = {}
    for rep in range(reps):
        elapsed, tasks, before = await _tidings_round(ws, n, sink, rep)
        ours.append(elapsed)
        base.append(await _noop_round(ws, n))
    cmd = (
        f"{WORKERS} x `tidings worker --concurrency {CONCURRENCY}` from start to {n:,} "
        f"delivered/sent / {WORKERS} x `celery -A bench.noop_app worker --concurrency "
        f"{CONCURRENCY}` draining {n:,} no-op tasks"
    )
    result.figures += [
        Figure(
            "postgresql (distributed)",
            f"drain {n:,} (in-app + e-mail)",
            "s",
            "lower",
            median(ours),
            median(base),
            aim_ratio=AIM_RATIO,
            command=cmd,
            samples=ours,
            baseline_samples=base,
        ),
        rate_figure(
            "postgresql (distributed)",
            "drain rate",
            "deliveries/s",
            n,
            ours,
            base,
            cmd + " (baseline: tasks/s)",
        ),
    ]
    result.notes += [
        f"{n // 2:,} recipients x (in_app, email) = {n:,} deliveries; their statuses when the "
        f"workers were started: {before}. Tidings publishes up to 100 delivery ids per task, "
        f"so the broker held {tasks} Tidings tasks against {n:,} no-op tasks. Each round "
        "uses a fresh database and an emptied broker (Redis db 12).",
        *(
            [
                f"{before['delivered']:,} deliveries (the in-app ones: the inbox row is the "
                "delivery) were already delivered by the send request itself, so the workers "
                "drain the e-mail half; the figure still counts all N."
            ]
            if before.get("delivered")
            else []
        ),
        "Both times run from starting the worker processes (their start-up, imports and, for "
        "Tidings, database and SMTP connections included) to the last delivery or task.",
    ]
    return result
