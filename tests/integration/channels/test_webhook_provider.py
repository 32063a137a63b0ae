"""WebhookProvider against a real local receiver, through the outbound guard.

The receiver verifies Tidings-Signature with its own implementation and answers 401
when it does not verify, as a tenant's endpoint would.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tidings.channels.base import (
    OutboundMessage,
    PermanentSendError,
    Provider,
    RetryableSendError,
    SendError,
    WebhookEvent,
)
from tidings.channels.outbound import GuardedTransport
from tidings.channels.webhook import WebhookProvider

if TYPE_CHECKING:
    # imported by pytest_plugins below, before anything else imports it (assertion rewriting)
    from tests.fixtures.webhook_receiver import ReceiverFactory, WebhookReceiver

pytest_plugins = ["tests.fixtures.webhook_receiver"]

OLD_SECRET = "whsec_old_0123456789abcdef0123456789abcdef"
NEW_SECRET = "whsec_new_fedcba9876543210fedcba9876543210"
DATA: dict[str, Any] = {
    "recipient_id": "cand-42",
    "notification": {"id": "ntf_1", "title": "Interview scheduled", "body": "Grüße"},
}


def make_message(
    target: str, *, secrets: tuple[str, ...] = (OLD_SECRET, NEW_SECRET)
) -> OutboundMessage:
    event = WebhookEvent(
        id="evt_0001",
        type="notification.created",
        created_at="2026-05-01T12:00:00Z",
        tenant="acme",
        data=DATA,
        secrets=secrets,
    )
    return OutboundMessage(
        delivery_id="dlv_1",
        tenant="acme",
        channel="webhook",
        target=target,
        category="interview",
        priority="normal",
        title="Interview scheduled",
        body="Grüße",
        webhook=event,
    )


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=GuardedTransport(allow_private=True), timeout=httpx.Timeout(2.0)
    ) as client:
        yield client


@pytest.fixture
def now() -> float:
    # whole seconds, so that a Retry-After date maps to an exact delay
    return float(int(time.time()))


@pytest.fixture
def provider(http_client: httpx.AsyncClient, now: float) -> WebhookProvider:
    return WebhookProvider(client=http_client, clock=lambda: now)


@pytest.fixture
def receiver(webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    webhook_receiver.secrets = (OLD_SECRET, NEW_SECRET)
    return webhook_receiver


async def test_signed_post_with_the_event_body(
    provider: WebhookProvider, receiver: WebhookReceiver, now: float
) -> None:
    result = await provider.send(make_message(receiver.url("/hooks/acme")))
    assert result.provider == "webhook"
    assert result.provider_message_id is None

    (request,) = receiver.requests
    assert request.method == "POST"
    assert request.path == "/hooks/acme"
    assert request.signature_valid is True
    assert request.verified_with == (OLD_SECRET, NEW_SECRET)
    assert request.header("content-type") == "application/json"
    assert request.header("user-agent") == "Tidings-Webhooks/1"
    assert request.header("tidings-event-id") == "evt_0001"
    assert request.header("tidings-event-type") == "notification.created"
    signature = request.header("tidings-signature")
    assert signature is not None
    parts = signature.split(",")
    assert parts[0] == f"t={int(now)}"
    assert [part[:3] for part in parts[1:]] == ["v1=", "v1="]
    assert request.json() == {
        "id": "evt_0001",
        "type": "notification.created",
        "created_at": "2026-05-01T12:00:00Z",
        "tenant": "acme",
        "data": DATA,
    }
    assert list(json.loads(request.body)) == ["id", "type", "created_at", "tenant", "data"]
    assert b" " not in request.body.replace(b"Interview scheduled", b"")  # compact
    assert OLD_SECRET not in request.body.decode()
    assert OLD_SECRET not in json.dumps(request.headers)


@pytest.mark.parametrize("secret", [OLD_SECRET, NEW_SECRET])
async def test_a_receiver_knowing_either_secret_accepts(
    provider: WebhookProvider, webhook_receiver_factory: ReceiverFactory, secret: str
) -> None:
    # During a rotation, endpoints that know only the old or only the new secret both verify.
    receiver = webhook_receiver_factory(secrets=[secret])
    await provider.send(make_message(receiver.url()))
    (request,) = receiver.requests
    assert request.verified_with == (secret,)
    assert request.status == 200


async def test_a_receiver_with_another_secret_refuses(
    provider: WebhookProvider, webhook_receiver_factory: ReceiverFactory
) -> None:
    receiver = webhook_receiver_factory(secrets=["whsec_someone_else"])
    with pytest.raises(PermanentSendError) as caught:
        await provider.send(make_message(receiver.url()))
    assert caught.value.code == 401
    assert receiver.requests[0].signature_valid is False


async def test_stale_clock_fails_verification(
    http_client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    stale = WebhookProvider(client=http_client, clock=lambda: time.time() - 3600)
    with pytest.raises(PermanentSendError, match="401"):
        await stale.send(make_message(receiver.url()))


Expect = tuple[type[SendError] | None, int | str | None, float | None]


def _http_date(offset: float) -> Callable[[float], str]:
    return lambda now: formatdate(now + offset, usegmt=True)


STATUSES: list[tuple[int, dict[str, Any], Expect]] = [
    (200, {}, (None, None, None)),
    (201, {}, (None, None, None)),
    (202, {}, (None, None, None)),
    (204, {}, (None, None, None)),
    (500, {}, (RetryableSendError, 500, None)),
    (502, {}, (RetryableSendError, 502, None)),
    (503, {"Retry-After": "7"}, (RetryableSendError, 503, 7.0)),
    (504, {}, (RetryableSendError, 504, None)),
    (408, {}, (RetryableSendError, 408, None)),
    (421, {}, (RetryableSendError, 421, None)),
    (429, {"Retry-After": "30"}, (RetryableSendError, 429, 30.0)),
    (429, {"Retry-After": _http_date(120)}, (RetryableSendError, 429, 120.0)),
    (429, {"Retry-After": _http_date(-60)}, (RetryableSendError, 429, 0.0)),
    (429, {"Retry-After": "soon"}, (RetryableSendError, 429, None)),
    (429, {}, (RetryableSendError, 429, None)),
    (400, {}, (PermanentSendError, 400, None)),
    (403, {}, (PermanentSendError, 403, None)),
    (404, {}, (PermanentSendError, 404, None)),
    (410, {}, (PermanentSendError, 410, None)),
    (413, {}, (PermanentSendError, 413, None)),
    (422, {}, (PermanentSendError, 422, None)),
    (301, {"Location": "/elsewhere"}, (PermanentSendError, 301, None)),
    (302, {"Location": "http://127.0.0.1:1/"}, (PermanentSendError, 302, None)),
    (307, {"Location": "/elsewhere"}, (PermanentSendError, 307, None)),
    (308, {"Location": "/elsewhere"}, (PermanentSendError, 308, None)),
]


@pytest.mark.parametrize(("status", "headers", "expect"), STATUSES)
async def test_answers_map_to_results_and_errors(
    provider: WebhookProvider,
    receiver: WebhookReceiver,
    now: float,
    status: int,
    headers: dict[str, Any],
    expect: Expect,
) -> None:
    error_type, code, retry_after = expect
    resolved = {name: value(now) if callable(value) else value for name, value in headers.items()}
    receiver.respond(status, headers=resolved, body=b"upstream said no")
    message = make_message(receiver.url())
    if error_type is None:
        result = await provider.send(message)
        assert result.provider == "webhook"
        assert result.provider_message_id is None
    else:
        with pytest.raises(error_type) as caught:
            await provider.send(message)
        assert caught.type is error_type
        assert caught.value.code == code
        assert str(status) in str(caught.value)
        assert "upstream said no" in str(caught.value)
        if isinstance(caught.value, RetryableSendError):
            assert caught.value.retry_after == retry_after
        if 300 <= status < 400:
            assert "redirect" in str(caught.value)
    assert len(receiver.requests) == 1  # no redirect followed, no retry inside the provider


async def test_a_slow_endpoint_times_out(receiver: WebhookReceiver, now: float) -> None:
    receiver.respond(200, delay=2.0)
    async with httpx.AsyncClient(
        transport=GuardedTransport(allow_private=True), timeout=httpx.Timeout(0.3)
    ) as client:
        provider = WebhookProvider(client=client, clock=lambda: now)
        with pytest.raises(RetryableSendError) as caught:
            await provider.send(make_message(receiver.url()))
    assert caught.value.code == "timeout"


async def test_the_overall_deadline_bounds_an_endpoint(
    http_client: httpx.AsyncClient, receiver: WebhookReceiver, now: float
) -> None:
    receiver.respond(200, delay=2.0)
    provider = WebhookProvider(client=http_client, clock=lambda: now, deadline_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(RetryableSendError) as caught:
        await provider.send(make_message(receiver.url()))
    assert caught.value.code == "timeout"
    assert time.monotonic() - started < 1.5


async def test_an_unreachable_endpoint_is_retryable(provider: WebhookProvider) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(RetryableSendError) as caught:
            await provider.send(make_message(f"http://127.0.0.1:{port}/hook"))
    assert caught.value.code == "connection"


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://2852039166/",
        "http://[fe80::1]/",
        "http://0.0.0.0:8080/",
    ],
)
async def test_forbidden_targets_fail_permanently(provider: WebhookProvider, target: str) -> None:
    with pytest.raises(PermanentSendError) as caught:
        await provider.send(make_message(target))
    assert caught.value.code == "target_refused"
    assert caught.value.address_rejected is False


async def test_a_name_resolving_to_metadata_fails_permanently(now: float) -> None:
    async def metadata_dns(host: str, port: int) -> list[str]:
        return ["169.254.169.254"]

    transport = GuardedTransport(allow_private=True, resolver=metadata_dns)
    async with httpx.AsyncClient(transport=transport) as client:
        provider = WebhookProvider(client=client, clock=lambda: now)
        with pytest.raises(PermanentSendError) as caught:
            await provider.send(make_message("https://metadata.google.internal/hook"))
    assert caught.value.code == "target_refused"


async def test_plain_http_is_refused_without_private_targets(
    receiver: WebhookReceiver, now: float
) -> None:
    async with httpx.AsyncClient(transport=GuardedTransport(allow_private=False)) as client:
        provider = WebhookProvider(client=client, clock=lambda: now)
        with pytest.raises(PermanentSendError) as caught:
            await provider.send(make_message(receiver.url()))
    assert caught.value.code == "target_refused"
    assert receiver.requests == []


async def test_message_without_event_or_secret_fails_permanently(
    provider: WebhookProvider, receiver: WebhookReceiver
) -> None:
    no_event = OutboundMessage(
        delivery_id="d",
        tenant="acme",
        channel="webhook",
        target=receiver.url(),
        category="general",
        priority="normal",
        title="t",
        body="b",
    )
    with pytest.raises(PermanentSendError) as caught:
        await provider.send(no_event)
    assert caught.value.code == "no_event"
    with pytest.raises(PermanentSendError) as caught:
        await provider.send(make_message(receiver.url(), secrets=()))
    assert caught.value.code == "no_secret"
    assert receiver.requests == []


async def test_errors_name_the_host_not_the_url(
    provider: WebhookProvider, receiver: WebhookReceiver
) -> None:
    receiver.respond(500)
    with pytest.raises(RetryableSendError) as caught:
        await provider.send(make_message(receiver.url("/hooks/tok_PATHSECRET?key=QUERYSECRET")))
    text = str(caught.value)
    assert "127.0.0.1" in text
    assert "PATHSECRET" not in text
    assert "QUERYSECRET" not in text


async def test_a_huge_error_body_is_cut_short(
    provider: WebhookProvider, receiver: WebhookReceiver
) -> None:
    receiver.respond(500, body=b"x" * 500_000)
    with pytest.raises(RetryableSendError) as caught:
        await provider.send(make_message(receiver.url()))
    assert len(str(caught.value)) < 400


async def test_aclose_leaves_the_shared_client_open(
    provider: WebhookProvider, http_client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    await provider.aclose()
    assert not http_client.is_closed
    await provider.send(make_message(receiver.url()))
    assert len(receiver.requests) == 1


async def test_connections_are_reused_across_sends(
    provider: WebhookProvider, receiver: WebhookReceiver
) -> None:
    for _ in range(3):
        await provider.send(make_message(receiver.url()))
    assert len(receiver.requests) == 3
    assert receiver.connections == 1


async def test_provider_identity(http_client: httpx.AsyncClient) -> None:
    provider = WebhookProvider(client=http_client)
    assert isinstance(provider, Provider)
    assert provider.name == "webhook"
    named = WebhookProvider(client=http_client, name="webhook-eu")
    assert (named.name, named.channel) == ("webhook-eu", "webhook")
