"""Browser Web Push end to end: subscriptions through the API, delivery to a push-service
stand-in that verifies VAPID and decrypts every payload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Service, Tokens, make_settings, running
from tests.fixtures.push_service import PushService
from tests.integration.helpers import deliveries, send, settled
from tidings.channels.base import PushSubscription

ME = "/v1/me/push-subscriptions"


def _body(subscription: PushSubscription) -> dict[str, Any]:
    return {
        "endpoint": subscription.endpoint,
        "expirationTime": None,
        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
    }


@pytest.fixture
async def pushing(tmp_path: Path, database_url: str) -> AsyncIterator[Service]:
    # the stand-in listens on 127.0.0.1 over plain http: a private target
    settings = make_settings(
        tmp_path, database_url, allow_private_targets=True, delivery_max_attempts=3
    )
    async with running(settings) as svc:
        yield svc


async def test_public_key_subscribe_list_and_remove(
    pushing: Service, tokens: Tokens, push_service: PushService
) -> None:
    client = pushing.client
    key = (await client.get("/v1/push/vapid-public-key")).json()["public_key"]
    assert key == pushing.ctx.vapid_public_key and len(key) == 87  # 65 bytes, base64url

    browser = push_service.subscribe()
    me = tokens.user("cand-1")
    r = await client.post(ME, json=_body(browser), headers=me)
    assert r.status_code == 201, r.text
    assert r.json()["endpoint"] == browser.endpoint
    r = await client.post(ME, json=_body(browser), headers={**me, "User-Agent": "Firefox"})
    assert r.status_code == 200 and r.json()["user_agent"] == "Firefox"
    page = (await client.get(ME, headers=me)).json()
    assert [s["endpoint"] for s in page["items"]] == [browser.endpoint]
    assert "keys" not in page["items"][0]
    # another user sees none of it, and cannot remove it
    assert (await client.get(ME, headers=tokens.user("cand-2"))).json()["items"] == []
    r = await client.delete(ME, params={"endpoint": browser.endpoint}, headers=tokens.user("x"))
    assert r.status_code == 404
    r = await client.request("DELETE", ME, json={"endpoint": browser.endpoint}, headers=me)
    assert r.status_code == 204
    assert (await client.get(ME, headers=me)).json()["items"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"endpoint": "ftp://push.example.test/x"}, "endpoint", id="scheme"),
        pytest.param({"endpoint": "https://169.254.169.254/x"}, "endpoint", id="metadata"),
        pytest.param({"keys": {"p256dh": "AAAA", "auth": "A" * 22}}, "p256dh", id="short-key"),
        pytest.param({"keys": {"p256dh": "B" + "A" * 86, "auth": "AA"}}, "auth", id="short-auth"),
        pytest.param({"endpoint": "https://push.example.test/\u0000"}, "endpoint", id="nul"),
        pytest.param({"extra": 1}, "extra", id="unknown-field"),
    ],
)
async def test_bad_subscriptions_are_refused(
    pushing: Service, tokens: Tokens, change: dict[str, Any], field: str
) -> None:
    body = {
        "endpoint": "https://push.example.test/send/1",
        "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22},
        **change,
    }
    r = await pushing.client.post(ME, json=body, headers=tokens.user("cand-1"))
    assert r.status_code == 422, r.text
    assert field in str(r.json()["errors"][0]["loc"])


async def test_push_reaches_every_browser_encrypted_and_signed(
    pushing: Service, tokens: Tokens, push_service: PushService
) -> None:
    laptop, phone = push_service.subscribe(), push_service.subscribe()
    for browser in (laptop, phone):
        r = await pushing.client.post(ME, json=_body(browser), headers=tokens.user("cand-1"))
        assert r.status_code == 201
    accepted = await send(
        pushing.client,
        tokens,
        recipients=["cand-1"],
        title="Interview tomorrow",
        body="10:00 with Acme",
        action_url="https://ats.example.test/i/1",
        channels=["in_app", "push"],
        priority="urgent",
        category="interview",
    )
    await settled(pushing.client, tokens, accepted["id"])
    received = await push_service.wait_for_async(2)
    notification_id = accepted["notifications"][0]["id"]
    assert {push_service.sub_id(b) for b in (laptop, phone)} == {p.sub_id for p in received}
    for push in received:
        assert push.payload == {
            "title": "Interview tomorrow",
            "body": "10:00 with Acme",
            "url": "https://ats.example.test/i/1",
            "notification_id": notification_id,
            "category": "interview",
            "priority": "urgent",
            "tag": notification_id,
        }
        assert push.headers["urgency"] == "high" and push.headers["ttl"] == "86400"
        assert push.claims["aud"] == push_service.origin
    rows = await deliveries(pushing.client, tokens, send_id=accepted["id"], channel="push")
    assert sorted(r["status"] for r in rows) == ["sent", "sent"]
    assert len({r["target"] for r in rows}) == 2  # one delivery per subscription


async def test_gone_subscription_is_deleted_and_others_still_get_it(
    pushing: Service, tokens: Tokens, push_service: PushService
) -> None:
    stale, fresh = push_service.subscribe(), push_service.subscribe()
    me = tokens.user("cand-1")
    for browser in (stale, fresh):
        await pushing.client.post(ME, json=_body(browser), headers=me)
    push_service.unsubscribe(stale)  # it now answers 410
    accepted = await send(
        pushing.client, tokens, recipients=["cand-1"], title="T", body="B", channels=["push"]
    )
    await settled(pushing.client, tokens, accepted["id"])
    rows = await deliveries(pushing.client, tokens, send_id=accepted["id"])
    outcomes = sorted((r["status"], r["reason"]) for r in rows)
    assert outcomes == [("failed", "subscription_gone"), ("sent", None)]
    left = (await pushing.client.get(ME, headers=me)).json()["items"]
    assert [s["endpoint"] for s in left] == [fresh.endpoint]


async def test_throttled_push_is_retried_and_nobody_subscribed_is_suppressed(
    pushing: Service, tokens: Tokens, push_service: PushService
) -> None:
    browser = push_service.subscribe()
    await pushing.client.post(ME, json=_body(browser), headers=tokens.user("cand-1"))
    push_service.respond(browser, 429, headers={"Retry-After": "0"})
    accepted = await send(
        pushing.client,
        tokens,
        recipients=["cand-1", "cand-2"],
        title="T",
        body="B",
        channels=["push"],
    )
    await settled(pushing.client, tokens, accepted["id"])
    rows = {
        r["recipient_id"]: r
        for r in await deliveries(pushing.client, tokens, send_id=accepted["id"])
    }
    assert (rows["cand-1"]["status"], rows["cand-1"]["attempts"]) == ("sent", 2)
    assert (rows["cand-2"]["status"], rows["cand-2"]["reason"]) == ("suppressed", "no_address")


async def test_vapid_keys_are_generated_once_for_every_process(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url)
    async with running(settings) as first, running(settings) as second:
        assert first.ctx.vapid_public_key == second.ctx.vapid_public_key
    async with running(settings) as again:
        assert again.ctx.vapid_public_key == first.ctx.vapid_public_key


async def test_erasure_removes_push_subscriptions(
    pushing: Service, tokens: Tokens, push_service: PushService
) -> None:
    me = tokens.user("cand-1")
    await pushing.client.post(ME, json=_body(push_service.subscribe()), headers=me)
    export = await pushing.client.get("/v1/recipients/cand-1/export", headers=tokens.service())
    assert export.status_code == 200
    assert len(export.json()["push_subscriptions"]) == 1
    r = await pushing.client.delete("/v1/recipients/cand-1", headers=tokens.service())
    assert r.status_code == 204
    assert (await pushing.client.get(ME, headers=me)).json()["items"] == []
