"""The send API: literal and template sends, addresses, idempotency, bulk, cancel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import Service, Tokens, running
from tests.integration.helpers import deliveries, send, settled
from tidings.config import Settings
from tidings.kit import sql
from tidings.models import Delivery, LiveEvent, Notification


async def test_literal_send_to_unknown_recipient_reaches_inbox(
    service: Service, tokens: Tokens
) -> None:
    accepted = await send(
        service.client, tokens, recipients=["new-user"], title="Hi", body="Welcome aboard"
    )
    assert accepted["status"] == "accepted"
    assert [n["recipient_id"] for n in accepted["notifications"]] == ["new-user"]
    inbox = await service.client.get("/v1/me/notifications", headers=tokens.user("new-user"))
    item = inbox.json()["items"][0]
    assert (item["title"], item["body"], item["category"], item["priority"]) == (
        "Hi",
        "Welcome aboard",
        "general",
        "normal",
    )
    recipient = await service.client.get("/v1/recipients/new-user", headers=tokens.service())
    assert recipient.status_code == 200
    assert recipient.json()["email"] is None


async def test_channel_without_address_is_suppressed(service: Service, tokens: Tokens) -> None:
    accepted = await send(
        service.client,
        tokens,
        recipients=["no-contact"],
        title="t",
        body="b",
        channels=["in_app", "email", "sms"],
    )
    status = await settled(service.client, tokens, accepted["id"])
    assert status["counts"] == {
        "in_app": {"delivered": 1},
        "email": {"suppressed": 1},
        "sms": {"suppressed": 1},
    }
    rows = await deliveries(service.client, tokens, send_id=accepted["id"], channel="email")
    assert rows[0]["reason"] == "no_address"


async def test_template_send_renders_per_recipient(service: Service, tokens: Tokens) -> None:
    client = service.client
    for rid, name in (("c1", "Ada"), ("c2", "Grace")):
        await client.put(f"/v1/recipients/{rid}", json={"name": name}, headers=tokens.service())
    create = await client.post(
        "/v1/templates",
        headers=tokens.admin(),
        json={
            "key": "hello",
            "name": "Hello",
            "category": "candidate",
            "default_channels": ["in_app"],
            "content": {
                "in_app": {"title": "Hi {{ recipient.name }}", "body": "About {{ job_title }}"}
            },
        },
    )
    assert create.status_code == 201, create.text
    accepted = await send(
        client, tokens, recipients=["c1", "c2"], template="hello", data={"job_title": "Engineer"}
    )
    assert len(accepted["notifications"]) == 2
    for rid, name in (("c1", "Ada"), ("c2", "Grace")):
        items = (await client.get("/v1/me/notifications", headers=tokens.user(rid))).json()
        assert items["items"][0]["title"] == f"Hi {name}"
        assert items["items"][0]["body"] == "About Engineer"
        assert items["items"][0]["category"] == "candidate"
        assert items["items"][0]["template"] == "hello"


async def test_template_edit_does_not_change_accepted_sends(
    service: Service, tokens: Tokens
) -> None:
    client = service.client
    await send(
        client,
        tokens,
        recipients=["c1"],
        template="application_received",
        data={
            "candidate_name": "Ada",
            "job_title": "Engineer",
            "company_name": "Acme",
            "application_url": "https://ats.example.test/a/1",
        },
        channels=["in_app"],
    )
    before = (await client.get("/v1/me/notifications", headers=tokens.user("c1"))).json()
    await client.patch(
        "/v1/templates/application_received",
        headers=tokens.admin(),
        json={"content": {"in_app": {"title": "changed", "body": "changed"}}},
    )
    after = (await client.get("/v1/me/notifications", headers=tokens.user("c1"))).json()
    assert before["items"][0]["title"] == after["items"][0]["title"] != "changed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recipients": ["a"]}, None),
        ({"recipients": ["a"], "template": "digest", "title": "t", "body": "b"}, None),
        ({"recipients": [], "title": "t", "body": "b"}, None),
        ({"recipients": ["bad id!"], "title": "t", "body": "b"}, "recipients"),
        ({"recipients": ["a"], "title": "t", "body": "b", "channels": ["fax"]}, "channels"),
        ({"recipients": ["a"], "title": "t", "body": "b", "priority": "meh"}, "priority"),
        (
            {"recipients": ["a"], "title": "t", "body": "b", "send_at": "2030-01-01T09:00:00"},
            "send_at",
        ),
        ({"recipients": ["a"], "title": "t", "body": "b", "unknown": 1}, "unknown"),
        ({"recipients": ["a"], "title": "t\u0000", "body": "b"}, "title"),
        ({"recipients": ["a"], "template": "digest", "data": {"recipient": 1}}, None),
        ({"recipients": ["a"] * 1001, "title": "t", "body": "b"}, "recipients"),
    ],
)
async def test_invalid_sends_are_422_and_store_nothing(
    service: Service, tokens: Tokens, body: dict[str, object], field: str | None
) -> None:
    r = await service.client.post("/v1/notifications", json=body, headers=tokens.service())
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert problem["status"] == 422 and problem["errors"]
    if field:
        assert any(field in [str(p) for p in e["loc"]] for e in problem["errors"]), problem
    assert (await deliveries(service.client, tokens)) == []


async def test_missing_template_variables_are_named(service: Service, tokens: Tokens) -> None:
    r = await service.client.post(
        "/v1/notifications",
        headers=tokens.service(),
        json={"recipients": ["a"], "template": "interview_scheduled", "data": {}},
    )
    assert r.status_code == 422
    assert "interview_time" in r.json()["detail"]
    assert await deliveries(service.client, tokens) == []


async def test_unknown_template_is_422(service: Service, tokens: Tokens) -> None:
    r = await service.client.post(
        "/v1/notifications",
        headers=tokens.service(),
        json={"recipients": ["a"], "template": "nope", "data": {}},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"][-1] == "template"


async def test_idempotency_replays_and_conflicts(service: Service, tokens: Tokens) -> None:
    client = service.client
    body = {"recipients": ["a"], "title": "t", "body": "b"}
    headers = {**tokens.service(), "Idempotency-Key": "k-1"}
    first = await client.post("/v1/notifications", json=body, headers=headers)
    again = await client.post("/v1/notifications", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    as_field = await client.post(
        "/v1/notifications", json={**body, "idempotency_key": "k-1"}, headers=tokens.service()
    )
    assert as_field.json() == first.json()
    other = await client.post(
        "/v1/notifications", json={**body, "body": "different"}, headers=headers
    )
    assert other.status_code == 409
    both = await client.post(
        "/v1/notifications", json={**body, "idempotency_key": "k-2"}, headers=headers
    )
    assert both.status_code == 422
    # the key is scoped by tenant: another tenant's same key is a new send
    elsewhere = await client.post(
        "/v1/notifications",
        json=body,
        headers={**tokens.service("globex"), "Idempotency-Key": "k-1"},
    )
    assert elsewhere.status_code == 202 and elsewhere.json()["id"] != first.json()["id"]
    assert len(await deliveries(client, tokens)) == 1


async def test_idempotency_expires_after_24_hours(settings, tokens: Tokens) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import running
    from tidings.kit.clock import FrozenClock

    clock = FrozenClock(datetime.now(UTC))
    async with running(settings, clock=clock, run_deliveries=False) as svc:
        headers = {**tokens.service(), "Idempotency-Key": "daily"}
        body = {"recipients": ["a"], "title": "t", "body": "b"}
        first = await svc.client.post("/v1/notifications", json=body, headers=headers)
        clock.advance(timedelta(hours=24, seconds=1))
        second = await svc.client.post("/v1/notifications", json=body, headers=headers)
        assert second.status_code == 202 and second.json()["id"] != first.json()["id"]


async def test_twenty_concurrent_duplicates_create_one_send(
    service: Service, tokens: Tokens
) -> None:
    body = {"recipients": ["a", "b"], "title": "t", "body": "b"}
    headers = {**tokens.service(), "Idempotency-Key": "burst"}
    answers = await asyncio.gather(
        *(service.client.post("/v1/notifications", json=body, headers=headers) for _ in range(20))
    )
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["id"] for r in answers}) == 1
    assert len(await deliveries(service.client, tokens)) == 2


async def test_bulk_is_validated_as_a_whole(service: Service, tokens: Tokens) -> None:
    good = {"recipients": ["a"], "title": "t", "body": "b"}
    bad = {"recipients": ["a"], "title": "t"}
    r = await service.client.post(
        "/v1/notifications/bulk", headers=tokens.service(), json={"items": [good, bad]}
    )
    assert r.status_code == 422
    assert any(e["loc"][:3] == ["body", "items", 1] for e in r.json()["errors"])
    r = await service.client.post(
        "/v1/notifications/bulk",
        headers=tokens.service(),
        json={"items": [good, {"recipients": ["a"], "template": "nope"}]},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"][:3] == ["body", "items", 1]
    assert await deliveries(service.client, tokens) == []
    r = await service.client.post(
        "/v1/notifications/bulk",
        headers=tokens.service(),
        json={"items": [good, {**good, "recipients": ["b", "c"], "idempotency_key": "item-2"}]},
    )
    assert r.status_code == 202
    items = r.json()["items"]
    assert [len(i["notifications"]) for i in items] == [1, 2]
    assert len(await deliveries(service.client, tokens)) == 3


async def test_send_at_hides_item_until_due_and_cancel(service: Service, tokens: Tokens) -> None:
    client = service.client
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    accepted = await send(client, tokens, recipients=["a"], title="later", body="b", send_at=at)
    assert accepted["status"] == "scheduled"
    inbox = (await client.get("/v1/me/notifications", headers=tokens.user("a"))).json()
    assert inbox["items"] == []
    count = (await client.get("/v1/me/notifications/unread-count", headers=tokens.user("a"))).json()
    assert count == {"count": 0}
    cancelled = await client.delete(f"/v1/sends/{accepted['id']}", headers=tokens.service())
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["counts"] == {"in_app": {"cancelled": 1}}
    again = await client.delete(f"/v1/sends/{accepted['id']}", headers=tokens.service())
    assert again.status_code == 200 and again.json()["counts"] == {"in_app": {"cancelled": 1}}


async def test_expired_deliveries_are_suppressed(settings, tokens: Tokens) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import running
    from tidings.kit.clock import FrozenClock

    clock = FrozenClock(datetime.now(UTC))
    async with running(settings, clock=clock, run_deliveries=False) as svc:
        await svc.client.put(
            "/v1/recipients/a", json={"email": "a@example.test"}, headers=tokens.service()
        )
        expires = (clock.now() + timedelta(minutes=5)).isoformat()
        accepted = await send(
            svc.client,
            tokens,
            recipients=["a"],
            title="t",
            body="b",
            channels=["email"],
            expires_at=expires,
        )
    clock.advance(timedelta(minutes=6))
    async with running(settings, clock=clock) as svc:
        status = await settled(svc.client, tokens, accepted["id"])
        assert status["counts"] == {"email": {"suppressed": 1}}
        rows = await deliveries(svc.client, tokens, send_id=accepted["id"])
        assert rows[0]["reason"] == "expired"
    past = (clock.now() - timedelta(minutes=1)).isoformat()
    async with running(settings, clock=clock) as svc:
        r = await svc.client.post(
            "/v1/notifications",
            headers=tokens.service(),
            json={"recipients": ["a"], "title": "t", "body": "b", "expires_at": past},
        )
        assert r.status_code == 422


async def test_get_unknown_send_is_404(service: Service, tokens: Tokens) -> None:
    r = await service.client.get(
        "/v1/sends/0190d5b4-0000-7000-8000-000000000000", headers=tokens.service()
    )
    assert r.status_code == 404
    assert r.json()["instance"] == r.headers["x-request-id"]


async def test_only_in_app_sends_appear_in_the_inbox(service: Service, tokens: Tokens) -> None:
    await service.client.put(
        "/v1/recipients/a", json={"email": "a@example.test"}, headers=tokens.service()
    )
    await send(
        service.client, tokens, recipients=["a"], title="mail only", body="b", channels=["email"]
    )
    await send(
        service.client,
        tokens,
        recipients=["a"],
        title="both",
        body="b",
        channels=["email", "in_app"],
    )
    inbox = (await service.client.get("/v1/me/notifications", headers=tokens.user("a"))).json()
    assert [i["title"] for i in inbox["items"]] == ["both"]
    count = await service.client.get("/v1/me/notifications/unread-count", headers=tokens.user("a"))
    assert count.json() == {"count": 1}


@pytest.mark.parametrize("copy_from", [1, 10**9], ids=["copy", "insert"])
async def test_a_large_send_writes_the_same_rows_either_way(
    settings: Settings, tokens: Tokens, monkeypatch: pytest.MonkeyPatch, copy_from: int
) -> None:
    """PostgreSQL writes the rows of a large send with COPY; they must be the rows an
    INSERT writes (every column, JSON, booleans, timestamps, NULLs)."""
    monkeypatch.setattr(sql, "COPY_FROM_ROWS", copy_from)
    people = [f"p{i}" for i in range(6)]
    async with running(settings, run_deliveries=False) as svc:
        for person in people[:4]:  # two without an address: their e-mail is suppressed
            await svc.client.put(
                f"/v1/recipients/{person}",
                json={"email": f"{person}@example.test"},
                headers=tokens.service(),
            )
        accepted = await send(
            svc.client,
            tokens,
            recipients=people,
            title="Interview on Monday",
            body="Bring your portfolio",
            action_url="https://jobs.example/i/1",
            channels=["in_app", "email"],
            send_at=(svc.ctx.clock.now() + timedelta(hours=1)).isoformat(),
        )
        now = await send(
            svc.client, tokens, recipients=people, title="Offer", body="Congratulations"
        )
        async with svc.ctx.db.transaction(write=False) as session:
            events = [
                (event.seq, event.type, event.data)
                for event in await session.scalars(
                    select(LiveEvent).where(LiveEvent.recipient_id == "p0").order_by(LiveEvent.seq)
                )
            ]
            rows = {
                table.name: [
                    dict(row._mapping)
                    for row in await session.execute(
                        select(table).where(table.c.send_id == accepted["id"])
                    )
                ]
                for table in (Notification.__table__, Delivery.__table__)
            }
    (created_seq, created, item), (count_seq, counted, count) = [
        (seq, kind, data.get("title", data.get("count"))) for seq, kind, data in events
    ]
    assert (created, item, counted, count) == ("notification.created", "Offer", "unread_count", 1)
    assert count_seq == created_seq + 1
    assert now["id"] != accepted["id"]
    notifications, deliveries_ = rows["notifications"], rows["deliveries"]
    assert len(notifications) == 6 and len(deliveries_) == 12
    first = notifications[0]
    assert first["data"] == {}
    assert first["content"]["email"]["subject"] == "Interview on Monday"
    assert first["action_url"] == "https://jobs.example/i/1"
    assert first["visible"] is True and first["read_at"] is None
    assert first["created_at"].tzinfo is not None
    statuses = sorted((d["channel"], d["status"], d["reason"]) for d in deliveries_)
    assert statuses == sorted(
        [("in_app", "scheduled", "send_at")] * 6
        + [("email", "scheduled", "send_at")] * 4
        + [("email", "suppressed", "no_address")] * 2
    )
    assert {d["attempts"] for d in deliveries_} == {0}
    assert all(d["payload"] is None and d["sent_at"] is None for d in deliveries_)
