"""push: N Web Push messages, encrypted and VAPID-signed, into a push-service stand-in.

The stand-in is ``tests.fixtures.push_service.PushService(keep=False)`` in a process of
its own (``bench.standins``): it hands out browser-like subscriptions (a P-256 key pair
and an auth secret each) and verifies the VAPID token and decrypts the payload of every
push it accepts. Tidings runs with ``TIDINGS_ALLOW_PRIVATE_TARGETS=true`` (the stand-in
is plain http on 127.0.0.1) and a VAPID key pair made by the bench. Each of N
recipients registers one subscription with ``POST /v1/me/push-subscriptions`` under a
user token of its own (not timed); then one bulk request sends a literal notification
with ``channels: ["push"]`` to all of them, and the clock runs until the stand-in has
accepted N more pushes.

The baseline is a bare loop in the bench process: for the same N subscriptions it builds
the same payload JSON (``tidings.channels.webpush.build_payload``), encrypts it with
http_ece aes128gcm (``tidings.channels.webpush.encrypt_payload``: a fresh ECDH key and
salt per message), signs the VAPID JWT inline with PyJWT (ES256, cached per audience as
Tidings does) and POSTs with the same headers through one shared ``httpx.AsyncClient``,
16 at a time (``TIDINGS_RUNNER_CONCURRENCY``'s default), to the same stand-in.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from bench.harness import (
    TENANT,
    BenchError,
    Options,
    Workspace,
    create_database,
    running,
    service_client,
    tidings_server,
    token,
)
from bench.live import user_token
from bench.profiling import Profiler
from bench.report import ScenarioResult, rate_figure
from bench.standins import CpuMeter, StandInProcess, wait_for_count
from tidings.channels.base import OutboundMessage, PushSubscription
from tidings.channels.webpush import (
    build_payload,
    encrypt_payload,
    generate_vapid_private_key,
    load_vapid_private_key,
    vapid_public_key,
)
from tidings.kit.ids import uuid7

NAME = "push"
TITLE = "Web Push (aes128gcm + VAPID) to a push-service stand-in, 16 at a time"
CONCURRENCY = 16  # TIDINGS_RUNNER_CONCURRENCY's default
AIM_RATIO = 0.7
TITLE_TEXT = "Interview confirmed"
BODY_TEXT = "Your interview is on Tuesday at 10:00. Reply to this message to reschedule."
SUBJECT = "mailto:bench@example.test"
TTL_SECONDS = 86400  # what Tidings' WebPushProvider sends
VAPID_SECONDS = 12 * 3600 - 60
TIMEOUT = 300.0
REGISTER_CONCURRENCY = 8


def _recipient(i: int) -> str:
    return f"p{i:05d}"


def _subscription_body(sub: tuple[str, str, str]) -> dict[str, object]:
    endpoint, p256dh, auth = sub
    return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": p256dh, "auth": auth}}


async def _register(
    client: httpx.AsyncClient, ws: Workspace, subs: list[tuple[str, str, str]]
) -> None:
    """One subscription per recipient, each registered with that recipient's user token."""
    gate = asyncio.Semaphore(REGISTER_CONCURRENCY)

    async def post(i: int) -> None:
        bearer = user_token(ws, _recipient(i))
        async with gate:
            response = await client.post(
                "/v1/me/push-subscriptions",
                json=_subscription_body(subs[i]),
                headers={"Authorization": f"Bearer {bearer}", "User-Agent": "bench-browser/1.0"},
            )
        if response.status_code not in (200, 201):
            raise BenchError(
                f"POST push subscription: {response.status_code} {response.text[:300]}"
            )

    await asyncio.gather(*(post(i) for i in range(len(subs))))


async def tidings_send(client: httpx.AsyncClient, stand_in: StandInProcess, n: int) -> float:
    ids = [_recipient(i) for i in range(n)]
    items = [
        {
            "recipients": ids[i : i + 1000],
            "title": TITLE_TEXT,
            "body": BODY_TEXT,
            "channels": ["push"],
        }
        for i in range(0, n, 1000)
    ]
    accepted, refused = stand_in.call("counts")
    started = time.perf_counter()
    response = await client.post("/v1/notifications/bulk", json={"items": items})
    if response.status_code != 202:
        raise BenchError(f"bulk push send: {response.status_code} {response.text[:300]}")
    try:
        await wait_for_count(stand_in, accepted + n, refused_before=refused, timeout=TIMEOUT)
    except BenchError as exc:
        raise BenchError(f"{exc}; {await _failures(client)}") from None
    return time.perf_counter() - started


async def _failures(client: httpx.AsyncClient) -> str:
    """What Tidings says about push deliveries that did not go out (for the error)."""
    try:
        response = await client.get("/v1/deliveries", params={"channel": "push", "limit": 200})
        items = response.json().get("items", [])
    except (httpx.HTTPError, ValueError) as exc:
        return f"cannot list deliveries: {exc!r}"
    statuses: dict[str, int] = {}
    for item in items:
        statuses[item["status"]] = statuses.get(item["status"], 0) + 1
    errors = {item.get("last_error") for item in items if item.get("last_error")}
    return f"newest push deliveries by status {statuses}, errors {sorted(errors)[:3]}"


class VapidSigner:
    """The baseline's ``Authorization: vapid t=..., k=...``, signed once per audience."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, public_key: str) -> None:
        self._key = private_key
        self._public_key = public_key
        self._signed: dict[str, str] = {}

    def header(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        value = self._signed.get(audience)
        if value is None:
            claims = {"aud": audience, "exp": math.floor(time.time()) + VAPID_SECONDS}
            claims["sub"] = SUBJECT
            signed = jwt.encode(claims, self._key, algorithm="ES256", headers={"typ": "JWT"})
            value = self._signed[audience] = f"vapid t={signed}, k={self._public_key}"
        return value


async def direct_send(
    client: httpx.AsyncClient,
    stand_in: StandInProcess,
    subs: list[tuple[str, str, str]],
    signer: VapidSigner,
) -> float:
    """The baseline: build, encrypt, sign and POST, ``CONCURRENCY`` at a time."""
    n = len(subs)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            endpoint, p256dh, auth = subs[i]
            subscription = PushSubscription(endpoint=endpoint, p256dh=p256dh, auth=auth)
            message = OutboundMessage(
                delivery_id=uuid7(),
                tenant=TENANT,
                channel="push",
                target=endpoint,
                category="general",
                priority="normal",
                title=TITLE_TEXT,
                body=BODY_TEXT,
                push=subscription,
                data={"notification_id": uuid7()},
            )
            body = encrypt_payload(build_payload(message), subscription)
            headers = {
                "TTL": str(TTL_SECONDS),
                "Urgency": "normal",
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
                "Authorization": signer.header(endpoint),
            }
            response = await client.post(endpoint, content=body, headers=headers)
            if response.status_code != 201:
                raise BenchError(f"baseline push: {response.status_code} {response.text[:200]}")

    accepted, refused = stand_in.call("counts")
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    await wait_for_count(stand_in, accepted + n, refused_before=refused, timeout=TIMEOUT)
    return time.perf_counter() - started


async def run(ws: Workspace, opts: Options) -> ScenarioResult:
    n = 300 if opts.quick else 2000
    reps = 1 if opts.quick else 3
    profiler = Profiler(opts.profile_dir)
    result = ScenarioResult(NAME, TITLE, command="")
    vapid_private = generate_vapid_private_key()
    vapid_public = vapid_public_key(vapid_private)
    signer = VapidSigner(load_vapid_private_key(vapid_private), vapid_public)
    stand_in = StandInProcess("push")
    ws.on_close(stand_in.stop)
    try:
        stand_in.start()
        subs = stand_in.call("subscribe", n)
        for kind in opts.databases:
            db = create_database(ws, kind, "push")
            bearer = token(ws, db, "ats", service=True)
            server = tidings_server(
                ws,
                db,
                TIDINGS_ALLOW_PRIVATE_TARGETS="true",
                TIDINGS_VAPID_PRIVATE_KEY=vapid_private,
                TIDINGS_VAPID_PUBLIC_KEY=vapid_public,
                TIDINGS_VAPID_SUBJECT=SUBJECT,
            )
            # also when interrupted while it starts (running() stops it only once up)
            ws.on_close(server.stop)
            ours: list[float] = []
            base: list[float] = []
            async with (
                running(server),
                service_client(server, bearer, timeout=TIMEOUT) as client,
                httpx.AsyncClient(timeout=30.0) as direct,
            ):
                started = time.perf_counter()
                await _register(client, ws, subs)
                registered = time.perf_counter() - started
                cpu = CpuMeter(server.pid, stand_in)
                for rep in range(reps):
                    seconds = ours[-1] if ours else n / 400
                    task = await profiler.record(f"push-{kind}-{rep}", server.pid, seconds)
                    cpu.start()
                    ours.append(await tidings_send(client, stand_in, n))
                    cpu.stop("tidings")
                    await Profiler.finish(task)
                    seconds = base[-1] if base else n / 400
                    task = await profiler.record(
                        f"push-{kind}-baseline-{rep}", os.getpid(), seconds
                    )
                    cpu.start()
                    base.append(await direct_send(direct, stand_in, subs, signer))
                    cpu.stop("baseline")
                    await Profiler.finish(task)
            result.figures.append(
                rate_figure(
                    kind,
                    f"{n:,} pushes",
                    "msg/s",
                    n,
                    ours,
                    base,
                    f"POST /v1/notifications/bulk ({n:,} recipients, channels push) until the "
                    f"stand-in accepted {n:,} / build_payload + encrypt_payload + PyJWT ES256 "
                    f"(cached) + httpx, {CONCURRENCY} at a time",
                    aim_ratio=AIM_RATIO,
                )
            )
            result.notes.append(
                f"{kind}: registering the {n:,} subscriptions ({n:,} x POST "
                f"/v1/me/push-subscriptions, each with its user's token, {REGISTER_CONCURRENCY} "
                f"at a time, not timed) took {registered:.1f}s. "
                f"{cpu.describe(n, 'the baseline loop')}."
            )
    finally:
        stand_in.stop()
    result.notes.append(
        "The push-service stand-in (tests.fixtures.push_service, in its own process, keeping "
        "counts only) verifies the ES256 VAPID token and decrypts every payload; it is shared "
        "by both sides and takes CPU from the same 2 cores, so it caps what either side "
        "can reach."
    )
    result.notes.append(
        f"Tidings' runner takes up to 100 deliveries per batch in each of its 4 consumers and "
        f"sends {CONCURRENCY} at a time across them (`TIDINGS_RUNNER_CONCURRENCY`), as the "
        f"baseline keeps {CONCURRENCY} in flight. Both send the payload `{{title, body, url, "
        f"notification_id, category, priority, tag}}` with TTL {TTL_SECONDS}, Urgency normal; "
        "the baseline uses Tidings' public `build_payload` and `encrypt_payload` (the same "
        "primitives) and signs inline."
    )
    return result
