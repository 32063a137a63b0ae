"""live_fanout: one event each to 1,000 connected sockets (1,000 users), embedded.

One ``tidings serve`` on SQLite; 1,000 users (``u00000``...) each open one ``/v1/ws``
socket from one asyncio process (tokens minted in-process with the run's JWT secret).
Once all are connected and have their hello, one literal in-app send with the 1,000
users as recipients is POSTed (service token). Two figures come from each round:

- delivery of the logged events: from the first socket's ``notification.created`` frame
  to the last one's. Events are published only after the send's transaction committed
  them to the log, so the first frame marks "logged"; the span is the fan-out itself.
- end to end: from just before the POST until the last socket got its frame
  (notifications per second, reported without an aim).

The baseline, from the same client harness in the same run: a minimal websockets server
(``bench/ws_baseline.py``, a process of its own) sending one distinct frame to each of
1,000 connections in a plain loop of ``send()``, timed the same two ways (first to last
frame, and from the control message to the last frame).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import httpx
from websockets.asyncio.client import connect

from bench.harness import (
    HOST,
    BenchError,
    Options,
    Workspace,
    create_database,
    free_port,
    running,
    tidings_server,
    token,
)
from bench.live import Background, LiveSocket, pythonpath, raise_open_files, user_token, ws_url
from bench.report import Figure, ScenarioResult, median, rate_figure

NAME = "live_fanout"
TITLE = "one event to each of 1,000 connected sockets (1,000 users), embedded"
AIM_RATIO = 0.3
TIMEOUT = 120.0
CONNECT_PARALLEL = 32


class _Round:
    """Counts frames of the current round across all sockets."""

    def __init__(self) -> None:
        self.expected = 0
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.done = asyncio.Event()

    def reset(self, expected: int) -> None:
        self.expected, self.count, self.first, self.last = expected, 0, 0.0, 0.0
        self.done.clear()

    @property
    def spread(self) -> float:
        """First frame to last frame of the round."""
        return self.last - self.first

    def hit(self, _ident: str, at: float) -> None:
        self.count += 1
        self.first = at if self.count == 1 else min(self.first, at)
        self.last = max(self.last, at)
        if self.count >= self.expected:
            self.done.set()

    async def wait(self, what: str) -> None:
        try:
            await asyncio.wait_for(self.done.wait(), TIMEOUT)
        except TimeoutError:
            raise BenchError(
                f"{what}: {self.count} of {self.expected} sockets got their frame "
                f"within {TIMEOUT:.0f}s"
            ) from None


async def _connect_all(url: str, bearers: list[str], tally: _Round) -> list[LiveSocket]:
    gate = asyncio.Semaphore(CONNECT_PARALLEL)

    async def one(bearer: str) -> LiveSocket:
        async with gate:
            sock = await LiveSocket.open(url, bearer, timeout=60.0)
            sock.on_created = tally.hit
            return sock

    results = await asyncio.gather(*(one(b) for b in bearers), return_exceptions=True)
    sockets = [r for r in results if isinstance(r, LiveSocket)]
    errors = [r for r in results if not isinstance(r, LiveSocket)]
    if errors:
        await _close_all(sockets)
        raise BenchError(f"{len(errors)} of {len(bearers)} sockets failed: {errors[0]!r}")
    return sockets


async def _close_all(sockets: list[LiveSocket]) -> None:
    gate = asyncio.Semaphore(64)

    async def one(sock: LiveSocket) -> None:
        async with gate:
            await sock.close()

    await asyncio.gather(*(one(s) for s in sockets))


async def _tidings(
    ws: Workspace, n: int, reps: int
) -> tuple[list[float], list[float], float, list[float]]:
    db = create_database(ws, "sqlite", "live-fanout")
    service = token(ws, db, "ats", service=True)
    users = [f"u{i:05d}" for i in range(n)]
    bearers = [user_token(ws, u) for u in users]
    tally = _Round()
    times: list[float] = []
    spreads: list[float] = []
    posts: list[float] = []
    async with (
        running(tidings_server(ws, db)) as server,
        httpx.AsyncClient(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {service}"},
            timeout=TIMEOUT,
        ) as client,
    ):
        t0 = time.perf_counter()
        sockets = await _connect_all(ws_url(server.base_url), bearers, tally)
        connect_s = time.perf_counter() - t0
        try:
            for rep in range(reps):
                tally.reset(n)
                body = {
                    "recipients": users,
                    "title": f"Hiring update {rep}",
                    "body": "The role you applied for has a new status.",
                    "channels": ["in_app"],
                }
                started = time.perf_counter()
                response = await client.post("/v1/notifications", json=body)
                if response.status_code not in (200, 201, 202):
                    raise BenchError(f"send: {response.status_code} {response.text[:300]}")
                posts.append(time.perf_counter() - started)
                await tally.wait("Tidings")
                times.append(tally.last - started)
                spreads.append(tally.spread)
                await asyncio.sleep(1.0)  # let the unread_count frames drain
        finally:
            await _close_all(sockets)
    return times, spreads, connect_s, posts


async def _baseline(ws: Workspace, n: int, reps: int) -> tuple[list[float], list[float]]:
    port = free_port()
    work = ws.dir("ws-baseline")
    server = Background(
        "ws-baseline",
        [sys.executable, "-m", "bench.ws_baseline", str(port)],
        {**os.environ, "PYTHONPATH": pythonpath()},
        work,
    ).start()
    url = f"ws://{HOST}:{port}/"
    tally = _Round()
    times: list[float] = []
    spreads: list[float] = []
    try:
        for _ in range(100):  # up to ~10 s for the server to listen
            server.check()
            try:
                probe = await LiveSocket.open(url, "none", timeout=2.0)
                await probe.close()
                break
            except (OSError, TimeoutError, BenchError):
                await asyncio.sleep(0.1)
        sockets = await _connect_all(url, ["none"] * n, tally)
        try:
            async with connect(f"ws://{HOST}:{port}/control", open_timeout=10) as control:
                for _ in range(reps):
                    tally.reset(n)
                    started = time.perf_counter()
                    await control.send("go")
                    await tally.wait("baseline")
                    times.append(tally.last - started)
                    spreads.append(tally.spread)
                    await asyncio.wait_for(control.recv(), TIMEOUT)  # "done"
                    await asyncio.sleep(1.0)
        finally:
            await _close_all(sockets)
    finally:
        server.stop()
    return times, spreads


async def run(ws: Workspace, opts: Options) -> ScenarioResult:
    n = 100 if opts.quick else 1000
    reps = 1 if opts.quick else 3
    raise_open_files(2 * n + 1024)
    result = ScenarioResult(NAME, TITLE, command="")
    ours, ours_spread, connect_s, posts = await _tidings(ws, n, reps)
    base, base_spread = await _baseline(ws, n, reps)
    cmd = (
        f"{n:,} /v1/ws sockets, 1 POST /v1/notifications with {n:,} in-app recipients / "
        f"bench.ws_baseline: send() loop over {n:,} connections"
    )
    result.figures += [
        Figure(
            "sqlite (embedded)",
            f"delivery of the logged event to {n:,} sockets (first to last frame)",
            "s",
            "lower",
            median(ours_spread),
            median(base_spread),
            aim_ratio=AIM_RATIO,
            command=cmd,
            samples=ours_spread,
            baseline_samples=base_spread,
        ),
        Figure(
            "sqlite (embedded)",
            f"end to end: POST until all {n:,} sockets got the event",
            "s",
            "lower",
            median(ours),
            median(base),
            command=cmd,
            samples=ours,
            baseline_samples=base,
        ),
        rate_figure(
            "sqlite (embedded)",
            f"notifications/s end to end to {n:,} users",
            "/s",
            n,
            ours,
            base,
            cmd + " (baseline: frames/s)",
        ),
    ]
    result.notes += [
        f"Connecting the {n:,} Tidings sockets ({CONNECT_PARALLEL} at a time, each to its "
        f"hello frame) took {connect_s:.1f}s (not in the figures). The POST's own round "
        f"trip took {median(posts) * 1000:.0f} ms (median) of the Tidings time.",
        f"The end-to-end time includes the request itself ({n:,} notifications, deliveries "
        "and live events written, then published to the sockets' subscriptions after the "
        f"commit) and the frames; the baseline only sends frames. All {n:,} clients live in "
        "the bench's one asyncio process and share the 2 cores with the server.",
        "The aimed figure is the fan-out of events already in the log: the first frame "
        "arrives only after the commit that logged every event, so the first-to-last span "
        "is the hub's publish and the sockets' sends.",
    ]
    return result
