"""sms: N SMS through Tidings' Twilio provider into the Twilio stand-in.

The stand-in is ``tests.fixtures.twilio_service.TwilioService`` with one account, in a
process of its own (``bench.standins``); it checks basic auth, the form and each
number, and records every accepted message (its records are cleared after each run).
Tidings runs with ``TIDINGS_TWILIO_ACCOUNT_SID``/``_AUTH_TOKEN``, ``_FROM=+15005550006``
and ``_BASE_URL`` pointing at the stand-in. N recipients get phone numbers first
(``PUT /v1/recipients/{id}``, not timed); then one bulk request sends a literal
notification with ``channels: ["sms"]`` to all of them, and the clock runs until the
stand-in has accepted N messages. The baseline is a bare httpx loop in the bench
process that POSTs the same forms (``To``, ``Body``, ``From``, ``StatusCallback``) with
basic auth, 16 at a time through one ``httpx.AsyncClient``, to the same stand-in.
There is no aim: the figures are reported only.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import httpx

from bench.harness import (
    BenchError,
    Options,
    Workspace,
    create_database,
    running,
    service_client,
    tidings_server,
)
from bench.harness import token as service_token
from bench.profiling import Profiler
from bench.report import ScenarioResult, rate_figure
from bench.standins import CpuMeter, StandInProcess, wait_for_count

NAME = "sms"
TITLE = "SMS through the Twilio provider into the Twilio stand-in, 16 at a time"
CONCURRENCY = 16  # TIDINGS_RUNNER_CONCURRENCY's default
SENDER = "+15005550006"  # Twilio's magic test "From" number
PUBLIC_URL = "http://localhost:8000"  # Tidings' default; the StatusCallback derives from it
STATUS_CALLBACK = f"{PUBLIC_URL}/v1/providers/twilio/status"
TITLE_TEXT = "Interview confirmed"
BODY_TEXT = "Your interview is on Tuesday at 10:00. Reply to this message to reschedule."
TIMEOUT = 300.0
SETUP_CONCURRENCY = 8


def _recipient(i: int) -> str:
    return f"s{i:05d}"


def _phone(i: int) -> str:
    return f"+1555{i:07d}"


async def _create_recipients(client: httpx.AsyncClient, n: int) -> None:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def put(i: int) -> None:
        async with gate:
            response = await client.put(
                f"/v1/recipients/{_recipient(i)}", json={"phone": _phone(i)}
            )
        if response.status_code not in (200, 201):
            raise BenchError(f"PUT recipient: {response.status_code} {response.text[:300]}")

    await asyncio.gather(*(put(i) for i in range(n)))


async def _failures(client: httpx.AsyncClient) -> str:
    """What Tidings says about SMS deliveries that did not go out (for the error)."""
    try:
        response = await client.get("/v1/deliveries", params={"channel": "sms", "limit": 200})
        items = response.json().get("items", [])
    except (httpx.HTTPError, ValueError) as exc:
        return f"cannot list deliveries: {exc!r}"
    statuses: dict[str, int] = {}
    for item in items:
        statuses[item["status"]] = statuses.get(item["status"], 0) + 1
    errors = {item.get("last_error") for item in items if item.get("last_error")}
    return f"newest SMS deliveries by status {statuses}, errors {sorted(errors)[:3]}"


async def tidings_send(client: httpx.AsyncClient, stand_in: StandInProcess, n: int) -> float:
    ids = [_recipient(i) for i in range(n)]
    items = [
        {
            "recipients": ids[i : i + 1000],
            "title": TITLE_TEXT,
            "body": BODY_TEXT,
            "channels": ["sms"],
        }
        for i in range(0, n, 1000)
    ]
    stand_in.call("clear")
    started = time.perf_counter()
    response = await client.post("/v1/notifications/bulk", json={"items": items})
    if response.status_code != 202:
        raise BenchError(f"bulk SMS send: {response.status_code} {response.text[:300]}")
    try:
        await wait_for_count(stand_in, n, refused_before=0, timeout=TIMEOUT)
    except BenchError as exc:
        raise BenchError(f"{exc}; {await _failures(client)}") from None
    return time.perf_counter() - started


async def direct_send(
    client: httpx.AsyncClient, stand_in: StandInProcess, url: str, n: int
) -> float:
    """The baseline: the same form POSTs with basic auth, ``CONCURRENCY`` at a time."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            form = {"To": _phone(i), "Body": BODY_TEXT, "From": SENDER}
            form["StatusCallback"] = STATUS_CALLBACK
            response = await client.post(url, data=form, headers={"Accept": "application/json"})
            if response.status_code != 201:
                raise BenchError(f"baseline SMS: {response.status_code} {response.text[:200]}")

    stand_in.call("clear")
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    await wait_for_count(stand_in, n, refused_before=0, timeout=TIMEOUT)
    return time.perf_counter() - started


async def run(ws: Workspace, opts: Options) -> ScenarioResult:
    n = 300 if opts.quick else 2000
    reps = 1 if opts.quick else 3
    profiler = Profiler(opts.profile_dir)
    result = ScenarioResult(NAME, TITLE, command="")
    account_sid = "AC" + secrets.token_hex(16)
    auth_token = secrets.token_hex(16)
    stand_in = StandInProcess("twilio", {account_sid: auth_token})
    ws.on_close(stand_in.stop)
    try:
        stand_in.start()
        base_url = stand_in.address
        messages_url = f"{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json"
        for kind in opts.databases:
            db = create_database(ws, kind, "sms")
            bearer = service_token(ws, db, "ats", service=True)
            server = tidings_server(
                ws,
                db,
                TIDINGS_TWILIO_ACCOUNT_SID=account_sid,
                TIDINGS_TWILIO_AUTH_TOKEN=auth_token,
                TIDINGS_TWILIO_FROM=SENDER,
                TIDINGS_TWILIO_BASE_URL=base_url,
                TIDINGS_PUBLIC_URL=PUBLIC_URL,
            )
            # also when interrupted while it starts (running() stops it only once up)
            ws.on_close(server.stop)
            ours: list[float] = []
            base: list[float] = []
            async with (
                running(server),
                service_client(server, bearer, timeout=TIMEOUT) as client,
                httpx.AsyncClient(auth=(account_sid, auth_token), timeout=30.0) as direct,
            ):
                started = time.perf_counter()
                await _create_recipients(client, n)
                setup = time.perf_counter() - started
                cpu = CpuMeter(server.pid, stand_in)
                for rep in range(reps):
                    seconds = ours[-1] if ours else n / 500
                    task = await profiler.record(f"sms-{kind}-{rep}", server.pid, seconds)
                    cpu.start()
                    ours.append(await tidings_send(client, stand_in, n))
                    cpu.stop("tidings")
                    await Profiler.finish(task)
                    seconds = base[-1] if base else n / 500
                    task = await profiler.record(f"sms-{kind}-baseline-{rep}", os.getpid(), seconds)
                    cpu.start()
                    base.append(await direct_send(direct, stand_in, messages_url, n))
                    cpu.stop("baseline")
                    await Profiler.finish(task)
                stand_in.call("clear")
            result.figures.append(
                rate_figure(
                    kind,
                    f"{n:,} messages",
                    "msg/s",
                    n,
                    ours,
                    base,
                    f"POST /v1/notifications/bulk ({n:,} recipients, channels sms) until the "
                    f"stand-in accepted {n:,} / httpx form POSTs with basic auth, "
                    f"{CONCURRENCY} at a time",
                )
            )
            result.notes.append(
                f"{kind}: giving the {n:,} recipients their phone numbers ({n:,} x PUT "
                f"/v1/recipients/{{id}}, {SETUP_CONCURRENCY} at a time, not timed) took "
                f"{setup:.1f}s. {cpu.describe(n, 'the baseline loop')}."
            )
    finally:
        stand_in.stop()
    result.notes.append(
        "The Twilio stand-in (tests.fixtures.twilio_service, in its own process) checks the "
        "credentials, the form and the numbers of every message and records it; it is shared "
        "by both sides and takes CPU from the same 2 cores, so it caps what either side can "
        "reach. No aim is set for SMS: the figures are reported only."
    )
    result.notes.append(
        "The stand-in is served on uvloop here (bench/standins.py): started as "
        "`TwilioService.start()` does it, on the stdlib event loop with a socket whose proto "
        "is 0, its connections lack TCP_NODELAY and every answer waits about 40 ms for the "
        "client's delayed ACK (43 ms per sequential request measured, 0.5 ms on uvloop), "
        "which would cap 16 requests in flight at about 370 messages/s."
    )
    result.notes.append(
        f"Both sides POST `To`, `Body`, `From` ({SENDER}) and `StatusCallback` as a form with "
        "basic auth and `Accept: application/json`. Tidings' runner takes up to 100 "
        f"deliveries per batch in each of its 4 consumers and sends {CONCURRENCY} at a time "
        f"across them (`TIDINGS_RUNNER_CONCURRENCY`), as the baseline keeps {CONCURRENCY} "
        "in flight."
    )
    return result
