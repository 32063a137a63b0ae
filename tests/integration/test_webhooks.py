"""Webhooks end to end: endpoints through the API, signed events to a receiver that
verifies every signature independently."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Service, Tokens, make_settings, running
from tests.fixtures.smtp_sink import SMTPSink
from tests.fixtures.webhook_receiver import WebhookReceiver
from tests.integration.helpers import deliveries, send, settled
from tidings.kit.clock import FrozenClock

HOOKS = "/v1/webhook-endpoints"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC))


@pytest.fixture
async def hooked(
    tmp_path: Path, database_url: str, smtp_sink: SMTPSink, clock: FrozenClock
) -> AsyncIterator[Service]:
    # the receiver listens on 127.0.0.1 over plain http: a private target
    settings = make_settings(
        tmp_path,
        database_url,
        allow_private_targets=True,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_starttls=False,
        delivery_max_attempts=3,
    )
    async with running(settings, clock=clock) as svc:
        yield svc


async def _endpoint(
    svc: Service, tokens: Tokens, receiver: WebhookReceiver, **extra: Any
) -> dict[str, Any]:
    r = await svc.client.post(
        HOOKS, json={"url": receiver.url("/tidings"), **extra}, headers=tokens.admin()
    )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    receiver.secrets = (*receiver.secrets, created["secret"])
    return created


async def test_endpoint_lifecycle_never_shows_secrets_again(
    hooked: Service, tokens: Tokens, webhook_receiver: WebhookReceiver
) -> None:
    client = hooked.client
    given = "s" * 32
    created = await _endpoint(hooked, tokens, webhook_receiver, secret=given, categories=["offer"])
    assert created["secret"] == given and created["categories"] == ["offer"]
    generated = await _endpoint(hooked, tokens, webhook_receiver)
    assert generated["secret"].startswith("whsec_") and len(generated["secret"]) > 32

    listed = (await client.get(HOOKS, headers=tokens.admin())).json()["items"]
    assert [e["id"] for e in listed] == [generated["id"], created["id"]]
    one = (await client.get(f"{HOOKS}/{created['id']}", headers=tokens.admin())).json()
    assert "secret" not in str(listed) and "secret" not in one
    for headers in (tokens.service(), tokens.user("cand-1")):
        assert (await client.get(HOOKS, headers=headers)).status_code == 403
    # another tenant's admin cannot see, rotate or delete it
    other = tokens.admin("globex")
    for method, path in (
        ("GET", f"{HOOKS}/{created['id']}"),
        ("POST", f"{HOOKS}/{created['id']}/rotate-secret"),
        ("DELETE", f"{HOOKS}/{created['id']}"),
    ):
        assert (await client.request(method, path, headers=other)).status_code == 404
    r = await client.delete(f"{HOOKS}/{created['id']}", headers=tokens.admin())
    assert r.status_code == 204
    assert (await client.get(f"{HOOKS}/{created['id']}", headers=tokens.admin())).status_code == 404


@pytest.mark.parametrize(
    ("body", "allow_private", "field"),
    [
        pytest.param({"url": "http://hooks.example.test/x"}, False, "url", id="plain-http"),
        pytest.param({"url": "https://10.0.0.5/x"}, False, "url", id="private"),
        pytest.param({"url": "https://169.254.169.254/latest"}, True, "url", id="metadata"),
        pytest.param({"url": "https://[fe80::1]/x"}, True, "url", id="link-local-v6"),
        pytest.param({"url": "https://user:pw@hooks.example.test/"}, False, "url", id="userinfo"),
        pytest.param({"url": "https://h.example.test", "secret": "short"}, False, "secret"),
        pytest.param({"url": "https://h.example.test", "categories": []}, False, "categories"),
        pytest.param(
            {"url": "https://h.example.test", "categories": ["Bad!"]}, False, "categories"
        ),
    ],
)
async def test_bad_endpoints_are_refused(
    tmp_path: Path,
    database_url: str,
    tokens: Tokens,
    body: dict[str, Any],
    allow_private: bool,
    field: str,
) -> None:
    settings = make_settings(tmp_path, database_url, allow_private_targets=allow_private)
    async with running(settings, run_deliveries=False) as svc:
        r = await svc.client.post(HOOKS, json=body, headers=tokens.admin())
        assert r.status_code == 422, r.text
        assert field in str(r.json()["errors"][0]["loc"])
        assert (await svc.client.get(HOOKS, headers=tokens.admin())).json()["items"] == []


async def test_notification_created_is_signed_and_filtered_by_category(
    hooked: Service, tokens: Tokens, webhook_receiver: WebhookReceiver
) -> None:
    await _endpoint(hooked, tokens, webhook_receiver, categories=["interview"])
    accepted = await send(
        hooked.client,
        tokens,
        recipients=["cand-1", "cand-2"],
        title="Interview",
        body="Tomorrow",
        category="interview",
        channels=["in_app", "webhook"],
    )
    await settled(hooked.client, tokens, accepted["id"])
    skipped = await send(
        hooked.client,
        tokens,
        recipients=["cand-1"],
        title="Offer",
        body="b",
        category="offer",
        channels=["webhook"],
    )
    await settled(hooked.client, tokens, skipped["id"])
    received = await webhook_receiver.wait_for_requests_async(2)
    assert all(r.signature_valid for r in received)
    events = sorted((r.json() for r in received), key=lambda e: e["data"]["recipient_id"])
    assert [e["data"]["recipient_id"] for e in events] == ["cand-1", "cand-2"]
    for event, ref in zip(events, accepted["notifications"], strict=True):
        assert list(event) == ["id", "type", "created_at", "tenant", "data"]
        assert event["type"] == "notification.created" and event["tenant"] == "acme"
        assert event["data"]["id"] == ref["id"]
        assert event["data"]["title"] == "Interview" and event["data"]["read"] is False
    assert received[0].header("tidings-event-type") == "notification.created"
    (row,) = await deliveries(hooked.client, tokens, send_id=skipped["id"])
    assert (row["status"], row["reason"]) == ("suppressed", "no_address")
    assert len(webhook_receiver.requests) == 2


async def test_delivery_outcomes_are_emitted(
    hooked: Service, tokens: Tokens, webhook_receiver: WebhookReceiver, smtp_sink: SMTPSink
) -> None:
    await _endpoint(hooked, tokens, webhook_receiver)
    r = await hooked.client.put(
        "/v1/recipients/cand-1", json={"email": "ada@example.test"}, headers=tokens.service()
    )
    assert r.status_code == 201
    accepted = await send(
        hooked.client, tokens, recipients=["cand-1"], title="Hi", body="b", channels=["email"]
    )
    await settled(hooked.client, tokens, accepted["id"])
    (event,) = [r.json() for r in await webhook_receiver.wait_for_requests_async(1)]
    assert event["type"] == "delivery.sent"
    assert event["data"]["channel"] == "email" and event["data"]["provider"] == "smtp"
    assert event["data"]["send_id"] == accepted["id"] and event["data"]["status"] == "sent"


async def test_a_failing_endpoint_is_retried_with_the_same_event(
    hooked: Service, tokens: Tokens, webhook_receiver: WebhookReceiver, clock: FrozenClock
) -> None:
    await _endpoint(hooked, tokens, webhook_receiver)
    webhook_receiver.respond(503, headers={"Retry-After": "0"})
    accepted = await send(
        hooked.client, tokens, recipients=["cand-1"], title="T", body="b", channels=["webhook"]
    )
    await webhook_receiver.wait_for_requests_async(1)
    clock.advance(timedelta(seconds=5))  # past the backoff
    await settled(hooked.client, tokens, accepted["id"])
    first, second = await webhook_receiver.wait_for_requests_async(2)
    assert (first.status, second.status) == (503, 200)
    assert first.json() == second.json()  # receivers deduplicate on the event id
    (row,) = await deliveries(hooked.client, tokens, send_id=accepted["id"])
    assert (row["status"], row["attempts"]) == ("sent", 2)


async def test_rotation_signs_with_both_secrets_for_a_day(
    hooked: Service, tokens: Tokens, clock: FrozenClock
) -> None:
    async def deliver(receiver: WebhookReceiver) -> tuple[str, ...]:
        accepted = await send(
            hooked.client, tokens, recipients=["cand-1"], title="T", body="b", channels=["webhook"]
        )
        await settled(hooked.client, tokens, accepted["id"])
        return receiver.requests[-1].verified_with

    with WebhookReceiver() as receiver:
        created = await _endpoint(hooked, tokens, receiver)
        old = created["secret"]
        r = await hooked.client.post(
            f"{HOOKS}/{created['id']}/rotate-secret", headers=tokens.admin()
        )
        assert r.status_code == 200, r.text
        new = r.json()["secret"]
        assert new != old
        assert r.json()["previous_secret_expires_at"].startswith(
            (clock.now() + timedelta(hours=24)).strftime("%Y-%m-%dT%H")
        )
        receiver.secrets = (old, new)
        assert set(await deliver(receiver)) == {old, new}
        clock.advance(timedelta(hours=24, seconds=1))
        assert await deliver(receiver) == (new,)


async def test_deleting_an_endpoint_cancels_its_pending_events(
    tmp_path: Path, database_url: str, tokens: Tokens, webhook_receiver: WebhookReceiver
) -> None:
    settings = make_settings(tmp_path, database_url, allow_private_targets=True)
    async with running(settings, run_deliveries=False) as svc:
        created = await _endpoint(svc, tokens, webhook_receiver)
        accepted = await send(
            svc.client, tokens, recipients=["cand-1"], title="T", body="b", channels=["webhook"]
        )
        r = await svc.client.delete(f"{HOOKS}/{created['id']}", headers=tokens.admin())
        assert r.status_code == 204
        (row,) = await deliveries(svc.client, tokens, send_id=accepted["id"])
        assert (row["status"], row["reason"]) == ("cancelled", "target_removed")
