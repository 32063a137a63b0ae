"""The Web Push provider against a local push service that verifies and decrypts."""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest

from tidings.channels.base import (
    OutboundMessage,
    PermanentSendError,
    PushSubscription,
    RetryableSendError,
)
from tidings.channels.webpush import (
    MAX_PLAINTEXT_BYTES,
    WebPushProvider,
    build_payload,
    encrypt_payload,
    generate_vapid_private_key,
    load_vapid_private_key,
)

if TYPE_CHECKING:
    # imported for types only: a module imported before pytest registers it as a
    # plugin cannot have its asserts rewritten, and pytest warns (an error here)
    from tests.fixtures.push_service import PushService

SUBJECT = "mailto:ops@acme.example"
ProviderFactory = Callable[..., WebPushProvider]


def make_message(subscription: PushSubscription, **overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "delivery_id": "del-1",
        "tenant": "acme",
        "channel": "push",
        "target": subscription.endpoint,
        "category": "interview",
        "priority": "urgent",
        "title": "Interview moved",
        "body": "Now at 14:00 — room Zürich",
        "url": "https://app.example.com/interviews/7",
        "push": subscription,
        "data": {"notification_id": "n-42"},
    }
    values.update(overrides)
    return OutboundMessage(**values)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0, follow_redirects=False) as shared:
        yield shared


@pytest.fixture
def private_key() -> str:
    return generate_vapid_private_key()


@pytest.fixture
def provider_factory(client: httpx.AsyncClient, private_key: str) -> ProviderFactory:
    def make(**overrides: Any) -> WebPushProvider:
        values: dict[str, Any] = {"private_key": private_key, "subject": SUBJECT, "client": client}
        values.update(overrides)
        return WebPushProvider(**values)

    return make


async def test_delivered_payload_decrypts_to_what_was_sent(
    push_service: PushService, provider_factory: ProviderFactory
) -> None:
    provider = provider_factory()
    subscription = push_service.subscribe(application_server_key=provider.public_key)
    message = make_message(subscription)

    result = await provider.send(message)

    (push,) = push_service.delivered
    assert push_service.rejections == []
    assert push.sub_id == push_service.sub_id(subscription)
    assert push.plaintext == build_payload(message)
    assert push.payload == {
        "title": "Interview moved",
        "body": "Now at 14:00 — room Zürich",
        "url": "https://app.example.com/interviews/7",
        "notification_id": "n-42",
        "category": "interview",
        "priority": "urgent",
        "tag": "n-42",
    }
    assert push.headers["ttl"] == "86400"
    assert push.headers["urgency"] == "high"
    assert push.headers["content-encoding"] == "aes128gcm"
    assert push.claims["aud"] == push_service.origin
    assert push.claims["sub"] == SUBJECT
    assert time.time() < push.claims["exp"] <= time.time() + 12 * 3600
    assert result.provider == "webpush"
    assert result.provider_message_id is not None
    assert result.provider_message_id.startswith(f"{push_service.origin}/message/")


async def test_signed_header_is_reused_across_sends(
    push_service: PushService, provider_factory: ProviderFactory
) -> None:
    provider = provider_factory()
    subscriptions = [push_service.subscribe() for _ in range(3)]

    for subscription in subscriptions:
        await provider.send(make_message(subscription))

    headers = {push.headers["authorization"] for push in push_service.delivered}
    assert len(push_service.delivered) == 3
    assert len(headers) == 1


async def test_a_long_body_arrives_trimmed(
    push_service: PushService, provider_factory: ProviderFactory
) -> None:
    body = ("Grüße aus Köln, " * 400)[:5000]
    assert len(body.encode()) > 5000

    await provider_factory().send(make_message(push_service.subscribe(), body=body))

    (push,) = push_service.delivered
    assert len(push.plaintext) <= MAX_PLAINTEXT_BYTES
    assert push.body_size <= 4096
    assert push.payload["body"].endswith("…")
    assert body.startswith(push.payload["body"][:-1])
    assert push.payload["title"] == "Interview moved"


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_subscriptions_are_rejected_addresses(
    push_service: PushService, provider_factory: ProviderFactory, status: int
) -> None:
    subscription = push_service.subscribe()
    push_service.respond(subscription, status, text="subscription expired")

    with pytest.raises(PermanentSendError) as caught:
        await provider_factory().send(make_message(subscription))

    assert caught.value.code == status
    assert caught.value.address_rejected is True
    (push,) = push_service.received
    assert push.status == status
    assert push.claims["aud"] == push_service.origin  # still a valid, decryptable request


async def test_unsubscribed_browser_answers_410(
    push_service: PushService, provider_factory: ProviderFactory
) -> None:
    subscription = push_service.subscribe()
    push_service.unsubscribe(subscription)

    with pytest.raises(PermanentSendError) as caught:
        await provider_factory().send(make_message(subscription))

    assert (caught.value.code, caught.value.address_rejected) == (410, True)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param("30", 30.0, id="seconds"),
        pytest.param(None, None, id="absent"),
    ],
)
async def test_throttling_is_retryable_with_its_delay(
    push_service: PushService,
    provider_factory: ProviderFactory,
    retry_after: str | None,
    expected: float | None,
) -> None:
    subscription = push_service.subscribe()
    headers = {"Retry-After": retry_after} if retry_after else {}
    push_service.respond(subscription, 429, headers=headers, text="slow down")

    with pytest.raises(RetryableSendError) as caught:
        await provider_factory().send(make_message(subscription))

    assert caught.value.code == 429
    assert caught.value.retry_after == expected


async def test_retry_after_as_http_date(
    push_service: PushService, provider_factory: ProviderFactory
) -> None:
    now = float(int(time.time()))  # the service checks exp against its own clock
    subscription = push_service.subscribe()
    date = email.utils.formatdate(now + 45, usegmt=True)
    push_service.respond(subscription, 503, headers={"Retry-After": date})

    with pytest.raises(RetryableSendError) as caught:
        await provider_factory(clock=lambda: now).send(make_message(subscription))

    assert (caught.value.code, caught.value.retry_after) == (503, 45.0)


async def test_server_error_is_retryable_and_the_retry_succeeds(
    push_service: PushService, provider_factory: ProviderFactory
) -> None:
    provider = provider_factory()
    subscription = push_service.subscribe()
    push_service.respond(subscription, 500, text="internal error")
    message = make_message(subscription)

    with pytest.raises(RetryableSendError) as caught:
        await provider.send(message)
    result = await provider.send(message)

    assert caught.value.code == 500
    assert caught.value.retry_after is None
    assert [push.status for push in push_service.received] == [500, 201]
    assert result.provider_message_id is not None


async def test_payload_too_large_answer_is_permanent(
    push_service: PushService, provider_factory: ProviderFactory
) -> None:
    subscription = push_service.subscribe()
    push_service.respond(subscription, 413, text="Payload Too Large")

    with pytest.raises(PermanentSendError) as caught:
        await provider_factory().send(make_message(subscription))

    assert caught.value.code == 413
    assert caught.value.address_rejected is False
    assert "Payload Too Large" in str(caught.value)


async def test_wrong_vapid_key_is_refused_by_the_service(
    push_service: PushService, provider_factory: ProviderFactory
) -> None:
    subscription = push_service.subscribe(application_server_key=provider_factory().public_key)
    stranger = provider_factory(private_key=generate_vapid_private_key())

    with pytest.raises(PermanentSendError) as caught:
        await stranger.send(make_message(subscription))

    assert caught.value.code == 403
    assert caught.value.address_rejected is False
    assert [r.status for r in push_service.rejections] == [403]


async def test_slow_service_times_out_retryably(push_service: PushService) -> None:
    subscription = push_service.subscribe()
    push_service.respond(subscription, 201, delay=1.0)

    async with httpx.AsyncClient(timeout=0.2) as impatient:
        provider = WebPushProvider(
            private_key=generate_vapid_private_key(), subject=SUBJECT, client=impatient
        )
        with pytest.raises(RetryableSendError) as caught:
            await provider.send(make_message(subscription))

    assert caught.value.code == "timeout"


async def test_unreachable_service_is_retryable(
    push_service: PushService, provider_factory: ProviderFactory
) -> None:
    subscription = push_service.subscribe()
    push_service.stop()  # nothing listens on its port any more

    with pytest.raises(RetryableSendError) as caught:
        await provider_factory().send(make_message(subscription))

    assert caught.value.code == "connection"


async def test_concurrent_sends_share_the_client(
    push_service: PushService, provider_factory: ProviderFactory, client: httpx.AsyncClient
) -> None:
    provider = provider_factory()
    subscriptions = [push_service.subscribe() for _ in range(20)]

    results = await asyncio.gather(*(provider.send(make_message(s)) for s in subscriptions))
    await provider.aclose()

    assert len({r.provider_message_id for r in results}) == 20
    assert sorted(p.sub_id for p in push_service.delivered) == sorted(
        push_service.sub_id(s) for s in subscriptions
    )
    assert not client.is_closed


# -- the stand-in refuses what a real push service would --


def _headers(provider: WebPushProvider, audience: str, **overrides: str) -> dict[str, str]:
    headers = {
        "TTL": "60",
        "Urgency": "normal",
        "Content-Encoding": "aes128gcm",
        "Authorization": provider.authorization(audience),
    }
    headers.update(overrides)
    return {name: value for name, value in headers.items() if value}


def _token(private_key: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, load_vapid_private_key(private_key), algorithm="ES256")


async def test_stand_in_refuses_bad_requests(
    push_service: PushService,
    provider_factory: ProviderFactory,
    client: httpx.AsyncClient,
    private_key: str,
) -> None:
    provider = provider_factory()
    subscription = push_service.subscribe()
    origin = push_service.origin
    body = encrypt_payload(b'{"title": "x"}', subscription)
    far = _token(private_key, {"aud": origin, "exp": int(time.time()) + 24 * 3600, "sub": SUBJECT})
    stale = _token(private_key, {"aud": origin, "exp": int(time.time()) - 10, "sub": SUBJECT})
    no_sub = _token(private_key, {"aud": origin, "exp": int(time.time()) + 3600})
    key = provider.public_key
    cases: list[tuple[dict[str, str], bytes, int]] = [
        (_headers(provider, origin, Authorization=""), body, 401),
        (_headers(provider, origin, Authorization=f"WebPush {far}"), body, 401),
        (_headers(provider, "https://push.other.example"), body, 403),
        (_headers(provider, origin, Authorization=f"vapid t={far}, k={key}"), body, 403),
        (_headers(provider, origin, Authorization=f"vapid t={stale}, k={key}"), body, 403),
        (_headers(provider, origin, Authorization=f"vapid t={no_sub}, k={key}"), body, 403),
        (_headers(provider, origin, TTL=""), body, 400),
        (_headers(provider, origin, Urgency="urgent"), body, 400),
        (_headers(provider, origin, **{"Content-Encoding": "aesgcm"}), body, 400),
        (_headers(provider, origin), os.urandom(200), 400),
        (_headers(provider, origin), body + os.urandom(4096), 413),
    ]

    statuses = []
    for headers, content, _ in cases:
        response = await client.post(subscription.endpoint, headers=headers, content=content)
        statuses.append(response.status_code)

    assert statuses == [status for _, _, status in cases]
    assert push_service.received == []
    unknown = await client.post(
        f"{origin}/push/nope", headers=_headers(provider, origin), content=body
    )
    assert unknown.status_code == 404
