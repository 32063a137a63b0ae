"""email: N messages through Tidings' SMTP provider into an aiosmtpd sink process.

Tidings runs with ``TIDINGS_SMTP_HOST``/``PORT`` pointing at the sink,
``TIDINGS_SMTP_STARTTLS=false`` and a pool of 8 connections. N recipients with e-mail
addresses are created first (``PUT /v1/recipients/{id}``, not timed); then one bulk
request sends a literal e-mail to all of them, and the clock runs until the sink has
accepted N more messages. The baseline builds the same messages with the same MIME
builder (``tidings.channels.email.build_mime``) and sends them over 8 aiosmtplib
connections, kept open for the whole run, into the same sink.
"""

from __future__ import annotations

import asyncio
import time

import aiosmtplib
import httpx

from bench.harness import (
    HOST,
    BenchError,
    Options,
    Workspace,
    create_database,
    running,
    service_client,
    tidings_server,
    token,
)
from bench.profiling import Profiler
from bench.report import ScenarioResult, rate_figure
from bench.sink import SinkProcess
from tidings.channels.base import EmailContent, OutboundMessage
from tidings.channels.email import build_mime, envelope
from tidings.kit.ids import uuid7
from tidings.template.rendering import literal_html

NAME = "email"
TITLE = "e-mail through the SMTP provider (pool of 8) into an aiosmtpd sink"
POOL = 8
AIM_RATIO = 0.7
TITLE_TEXT = "Your application was received"
BODY_TEXT = "Thank you for applying. We will be in touch within a week."
SENDER = "Tidings <no-reply@localhost>"
TIMEOUT = 300.0


def _address(i: int) -> str:
    return f"candidate{i:05d}@example.test"


async def _create_recipients(client: httpx.AsyncClient, n: int) -> None:
    gate = asyncio.Semaphore(8)

    async def put(i: int) -> None:
        async with gate:
            response = await client.put(f"/v1/recipients/e{i:05d}", json={"email": _address(i)})
            if response.status_code not in (200, 201):
                raise BenchError(f"PUT recipient: {response.status_code} {response.text[:300]}")

    await asyncio.gather(*(put(i) for i in range(n)))


async def _until_received(sink: SinkProcess, target: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while sink.received < target:
        if time.monotonic() > deadline:
            raise BenchError(f"the sink has {sink.received} of {target} messages")
        await asyncio.sleep(0.01)


async def tidings_send(client: httpx.AsyncClient, sink: SinkProcess, n: int) -> float:
    ids = [f"e{i:05d}" for i in range(n)]
    items = [
        {
            "recipients": ids[i : i + 1000],
            "title": TITLE_TEXT,
            "body": BODY_TEXT,
            "channels": ["email"],
        }
        for i in range(0, n, 1000)
    ]
    target = sink.received + n
    started = time.perf_counter()
    response = await client.post("/v1/notifications/bulk", json={"items": items})
    if response.status_code != 202:
        raise BenchError(f"bulk e-mail send: {response.status_code} {response.text[:300]}")
    await _until_received(sink, target)
    return time.perf_counter() - started


async def direct_send(sink: SinkProcess, n: int) -> float:
    """The baseline: build the same MIME messages, send over 8 open connections."""
    html = literal_html(BODY_TEXT, title=TITLE_TEXT)
    clients = [
        aiosmtplib.SMTP(hostname=HOST, port=sink.port, start_tls=False, timeout=30)
        for _ in range(POOL)
    ]
    await asyncio.gather(*(c.connect() for c in clients))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker(client: aiosmtplib.SMTP) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            message = OutboundMessage(
                delivery_id=uuid7(),
                tenant="bench",
                channel="email",
                target=_address(i),
                category="general",
                priority="normal",
                title=TITLE_TEXT,
                body=BODY_TEXT,
                email=EmailContent(subject=TITLE_TEXT, text=BODY_TEXT, html=html),
            )
            mime = build_mime(message, default_sender=SENDER)
            sender, recipient = envelope(mime)
            await client.send_message(mime, sender=sender, recipients=[recipient])

    target = sink.received + n
    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in clients))
        await _until_received(sink, target)
        return time.perf_counter() - started
    finally:
        for c in clients:
            try:
                await c.quit()
            except aiosmtplib.SMTPException:
                c.close()


async def run(ws: Workspace, opts: Options) -> ScenarioResult:
    n = 300 if opts.quick else 2000
    reps = 1 if opts.quick else 3
    profiler = Profiler(opts.profile_dir)
    result = ScenarioResult(NAME, TITLE, command="")
    sink = SinkProcess().start()
    ws.on_close(sink.stop)
    for kind in opts.databases:
        db = create_database(ws, kind, "email")
        bearer = token(ws, db, "ats", service=True)
        server = tidings_server(
            ws,
            db,
            TIDINGS_SMTP_HOST=HOST,
            TIDINGS_SMTP_PORT=str(sink.port),
            TIDINGS_SMTP_STARTTLS="false",
            TIDINGS_SMTP_POOL_SIZE=str(POOL),
            TIDINGS_SMTP_FROM=SENDER,
        )
        ours: list[float] = []
        base: list[float] = []
        async with (
            running(server),
            service_client(server, bearer, timeout=TIMEOUT) as client,
        ):
            await _create_recipients(client, n)
            for rep in range(reps):
                task = await profiler.record(f"email-{kind}-{rep}", server.pid, 10)
                ours.append(await tidings_send(client, sink, n))
                await Profiler.finish(task)
                base.append(await direct_send(sink, n))
        result.figures.append(
            rate_figure(
                kind,
                f"{n:,} messages",
                "msg/s",
                n,
                ours,
                base,
                f"POST /v1/notifications/bulk ({n:,} e-mail recipients) until the sink "
                f"counted {n:,} / build_mime + {POOL} aiosmtplib connections",
                aim_ratio=AIM_RATIO,
            )
        )
    result.notes.append(
        "The sink (aiosmtpd in its own process, counting only) is shared by both sides and "
        "takes CPU from the same 2 cores; it caps what either side can reach."
    )
    return result
