"""Topics: membership API and topic sends expanded by the runner in idempotent batches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from tests.conftest import Service, Tokens, running
from tests.integration.helpers import eventually, send, settled
from tidings.config import Settings
from tidings.models import Notification, Send
from tidings.send import expansion


async def _subscribe(
    svc: Service, tokens: Tokens, topic: str, ids: list[str], tenant: str = "acme"
) -> dict[str, Any]:
    r = await svc.client.post(
        f"/v1/topics/{topic}/subscribers",
        json={"recipient_ids": ids},
        headers=tokens.service(tenant),
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_membership_add_list_remove(service: Service, tokens: Tokens) -> None:
    client = service.client
    assert await _subscribe(service, tokens, "eng-hiring", ["a", "b", "c"]) == {"added": 3}
    assert await _subscribe(service, tokens, "eng-hiring", ["c", "d"]) == {"added": 1}
    page = (
        await client.get(
            "/v1/topics/eng-hiring/subscribers", params={"limit": 3}, headers=tokens.service()
        )
    ).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = (
        await client.get(
            "/v1/topics/eng-hiring/subscribers",
            params={"limit": 3, "cursor": page["next_cursor"]},
            headers=tokens.service(),
        )
    ).json()
    members = {i["recipient_id"] for i in page["items"] + rest["items"]}
    assert members == {"a", "b", "c", "d"} and rest["next_cursor"] is None
    # unknown ids became empty recipients
    assert (await client.get("/v1/recipients/d", headers=tokens.service())).status_code == 200
    topics = (await client.get("/v1/recipients/c/topics", headers=tokens.service())).json()
    assert [t["topic"] for t in topics["items"]] == ["eng-hiring"]
    r = await client.request(
        "DELETE",
        "/v1/topics/eng-hiring/subscribers",
        json={"recipient_ids": ["a", "zzz"]},
        headers=tokens.service(),
    )
    assert r.json() == {"removed": 1}
    r = await client.get("/v1/recipients/nobody/topics", headers=tokens.service())
    assert r.status_code == 404
    # another tenant's topic of the same name is another topic
    other = (
        await client.get("/v1/topics/eng-hiring/subscribers", headers=tokens.service("globex"))
    ).json()
    assert other["items"] == []
    for bad in ({"recipient_ids": []}, {"recipient_ids": ["bad id"]}, {}):
        r = await client.post("/v1/topics/t/subscribers", json=bad, headers=tokens.service())
        assert r.status_code == 422
    r = await client.post(
        "/v1/topics/t/subscribers", json={"recipient_ids": ["a"]}, headers=tokens.user("a")
    )
    assert r.status_code == 403


async def test_erasure_removes_subscriptions(service: Service, tokens: Tokens) -> None:
    await _subscribe(service, tokens, "t", ["a", "b"])
    assert (
        await service.client.delete("/v1/recipients/a", headers=tokens.service())
    ).status_code == 204
    page = (await service.client.get("/v1/topics/t/subscribers", headers=tokens.service())).json()
    assert [i["recipient_id"] for i in page["items"]] == ["b"]


async def test_topic_send_reaches_every_member_once(service: Service, tokens: Tokens) -> None:
    members = [f"m{i:03d}" for i in range(120)]
    await _subscribe(service, tokens, "all-candidates", members)
    accepted = await send(
        service.client,
        tokens,
        topic="all-candidates",
        recipients=["m001", "outsider"],
        title="News",
        body="Hello",
    )
    assert accepted["notifications"] is None
    status = await settled(service.client, tokens, accepted["id"])
    assert status["counts"] == {"in_app": {"delivered": 121}}
    for rid in ("m001", "m119", "outsider"):
        inbox = (await service.client.get("/v1/me/notifications", headers=tokens.user(rid))).json()
        assert [i["title"] for i in inbox["items"]] == ["News"]


async def test_expansion_runs_in_batches_and_resumes(settings: Settings, tokens: Tokens) -> None:
    async with running(settings, run_deliveries=False) as svc:
        await _subscribe(svc, tokens, "big", [f"r{i:04d}" for i in range(250)])
        accepted = await send(
            svc.client,
            tokens,
            topic="big",
            recipients=["r0005"],
            template="system_alert",
            data={"alert_title": "Maintenance", "alert_message": "Tonight"},
        )
        ctx = svc.ctx
        # a first runner expands two batches of 100, then "dies" holding its lease
        token = None
        async with ctx.db.transaction() as session:
            token = await expansion._claim(
                session, accepted["id"], ctx.clock.now(), expansion.timedelta(seconds=60)
            )
        for _ in range(2):
            async with ctx.db.transaction() as session:
                token, _count = await expansion._expand_batch(
                    session, ctx, accepted["id"], token, expansion.timedelta(seconds=60), 100
                )
        # a second runner cannot take it while the lease holds...
        assert await expansion.expand(ctx, accepted["id"], batch=100) == 0
        async with ctx.db.transaction() as session:
            await session.execute(
                update(Send).values(
                    expansion_lease_until=ctx.clock.now() - expansion.timedelta(seconds=1)
                )
            )
        # ...and finishes the rest once it has expired
        created = await expansion.expand(ctx, accepted["id"], batch=100)
        assert created == 250 - 200
        async with ctx.db.transaction() as session:
            total = await session.scalar(select(func.count()).select_from(Notification))
            distinct = await session.scalar(
                select(func.count(func.distinct(Notification.recipient_id)))
            )
            send_row = await session.get(Send, accepted["id"])
        assert total == distinct == 250
        assert send_row is not None and send_row.expanded_at is not None


async def test_unexpanded_topic_send_is_picked_up_after_restart(
    settings: Settings, tokens: Tokens
) -> None:
    async with running(settings, run_deliveries=False) as svc:
        await _subscribe(svc, tokens, "t", ["a", "b"])
        accepted = await send(svc.client, tokens, topic="t", title="x", body="y")
    async with running(settings) as svc:

        async def expanded() -> bool:
            r = await svc.client.get("/v1/me/notifications", headers=tokens.user("b"))
            return bool(r.json()["items"])

        await eventually(expanded)
        status = await settled(svc.client, tokens, accepted["id"])
        assert status["counts"] == {"in_app": {"delivered": 2}}


async def test_cancelled_topic_send_stops_expanding(settings: Settings, tokens: Tokens) -> None:
    async with running(settings, run_deliveries=False) as svc:
        await _subscribe(svc, tokens, "t", ["a", "b"])
        accepted = await send(svc.client, tokens, topic="t", title="x", body="y")
        r = await svc.client.delete(f"/v1/sends/{accepted['id']}", headers=tokens.service())
        assert r.status_code == 200
        assert await expansion.expand(svc.ctx, accepted["id"]) == 0
        assert (
            await svc.client.get(f"/v1/sends/{accepted['id']}", headers=tokens.service())
        ).json()["status"] == "cancelled"
