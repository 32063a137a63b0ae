"""live_latency: from POST /v1/notifications to the ``notification.created`` frame.

A socket is open on ``GET /v1/ws`` for user ``live``; the bench POSTs a literal in-app
send to that user (service token), one at a time, and takes the time from just before
the POST until the frame arrives on the socket. Embedded: one ``tidings serve`` on
SQLite. Distributed: a PostgreSQL database of the bench's own, two ``tidings serve``
processes A and B with ``TIDINGS_REDIS_URL`` (fan-out) and ``TIDINGS_BROKER_URL`` (db 12
of the local Redis), one ``tidings worker``; the socket is on B, the sends go through A.
The baseline, in the same run and on the same server(s), is the HTTP round trip of the
same POST alone (to a user with no socket), so the ratio shows what live delivery adds.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.harness import (
    BenchError,
    Database,
    Options,
    Server,
    Workspace,
    create_database,
    tidings_env,
    tidings_server,
    token,
)
from bench.live import (
    REDIS_BROKER_URL,
    REDIS_LIVE_URL,
    LiveSocket,
    flush_broker,
    redis_client,
    tidings_worker,
    user_token,
    ws_url,
)
from bench.report import Figure, ScenarioResult, percentile

NAME = "live_latency"
TITLE = "send-to-socket latency: POST /v1/notifications until notification.created"
AIM_P99_MS = {"sqlite": 50.0, "postgresql": 100.0}
USER = "live"
FRAME_TIMEOUT = 10.0


def _body(recipient: str, i: int) -> dict[str, object]:
    return {
        "recipients": [recipient],
        "title": f"Interview slot {i}",
        "body": "Your interview is confirmed.",
        "channels": ["in_app"],
    }


async def _post(client: httpx.AsyncClient, recipient: str, i: int) -> str:
    response = await client.post("/v1/notifications", json=_body(recipient, i))
    if response.status_code not in (200, 201, 202):
        raise BenchError(f"POST /v1/notifications: {response.status_code} {response.text[:300]}")
    return str(response.json()["notifications"][0]["id"])


async def _measure(
    sender: httpx.AsyncClient, sock: LiveSocket, n: int, warmup: int
) -> tuple[list[float], list[float]]:
    """Per send: (ms until the frame, ms of the POST round trip alone)."""
    live: list[float] = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        ident = await _post(sender, USER, i)
        arrived = await sock.wait_for(ident, FRAME_TIMEOUT)
        if i >= warmup:
            live.append((arrived - t0) * 1000)
    http: list[float] = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        await _post(sender, "nosocket", i)
        if i >= warmup:
            http.append((time.perf_counter() - t0) * 1000)
    return live, http


async def _run_pair(
    ws: Workspace, send_server: Server, sock_server: Server, db: Database, n: int, warmup: int
) -> tuple[list[float], list[float]]:
    bearer = token(ws, db, "ats", service=True)
    sock = await LiveSocket.open(ws_url(sock_server.base_url), user_token(ws, USER))
    try:
        async with httpx.AsyncClient(
            base_url=send_server.base_url,
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=30.0,
        ) as sender:
            # the first send may wait for a worker to boot: allow it more time
            t0 = time.monotonic()
            ident = await _post(sender, USER, -1)
            await sock.wait_for(ident, 60.0)
            print(f"bench: first live frame after {time.monotonic() - t0:.1f}s", flush=True)
            return await _measure(sender, sock, n, warmup)
    finally:
        await sock.close()


async def _embedded(ws: Workspace, n: int, warmup: int) -> tuple[list[float], list[float]]:
    db = create_database(ws, "sqlite", "live-latency")
    server = tidings_server(ws, db)
    await server.start()
    try:
        return await _run_pair(ws, server, server, db, n, warmup)
    finally:
        server.stop()


async def _distributed(ws: Workspace, n: int, warmup: int) -> tuple[list[float], list[float]]:
    redis_client(REDIS_LIVE_URL)
    flush_broker()
    db = create_database(ws, "postgresql", "live-latency")
    extra = {"TIDINGS_REDIS_URL": REDIS_LIVE_URL, "TIDINGS_BROKER_URL": REDIS_BROKER_URL}
    a = tidings_server(ws, db, **extra)
    b = tidings_server(ws, db, **extra)
    a.name, b.name = "tidings A (postgresql)", "tidings B (postgresql)"
    b.log_path = db.data_dir / "server-b.log"
    worker_dir = ws.dir("live-latency-worker")
    worker = tidings_worker(
        "worker", tidings_env(ws, db, TIDINGS_DATA_DIR=str(worker_dir), **extra), worker_dir
    )
    try:
        worker.start()
        await asyncio.gather(a.start(), b.start())
        worker.check()
        return await _run_pair(ws, a, b, db, n, warmup)
    finally:
        a.stop()
        b.stop()
        worker.stop()
        flush_broker()


async def run(ws: Workspace, opts: Options) -> ScenarioResult:
    n = 30 if opts.quick else 200
    warmup = 5 if opts.quick else 20
    result = ScenarioResult(NAME, TITLE, command="")
    for kind in opts.databases:
        if kind == "sqlite":
            live, http = await _embedded(ws, n, warmup)
            label = "sqlite (embedded)"
            cmd = "1 tidings serve; socket and sends on it"
        else:
            live, http = await _distributed(ws, n, warmup)
            label = "postgresql (distributed)"
            cmd = "socket on serve B, sends via serve A, 1 tidings worker, Redis fan-out"
        for pct in (50, 99):
            result.figures.append(
                Figure(
                    label,
                    f"latency p{pct}",
                    "ms",
                    "lower",
                    percentile(live, pct),
                    percentile(http, pct),
                    aim_value=AIM_P99_MS[kind] if pct == 99 else None,
                    command=f"{cmd}; baseline: the same POST's round trip alone",
                    samples=[],
                )
            )
        result.notes.append(
            f"{label}: {len(live)} sends to the socket's user and {len(http)} to a user "
            f"without a socket, one at a time, after {warmup} discarded of each; "
            f"median send-to-frame {percentile(live, 50):.1f} ms, "
            f"POST alone {percentile(http, 50):.1f} ms."
        )
    if "postgresql" in opts.databases:
        result.notes.append(
            "Distributed: the send request on A commits the inbox row and its live events and "
            "publishes them to Redis after the commit; B's subscriber hands them to the socket. "
            "The worker runs (broker db 12) but in-app delivery is not on this path."
        )
    result.notes.append(
        "Ratio = POST round trip / send-to-frame time: what the live path adds on top of "
        "the request (1.00x would mean the frame arrives with the response). The aim is on "
        "the absolute p99: < 50 ms embedded, < 100 ms distributed."
    )
    return result
