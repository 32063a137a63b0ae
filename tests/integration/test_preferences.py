"""Preferences end to end, with time travel: the API's shape and null semantics, switches,
urgent, quiet hours across midnight and DST, digests built exactly once, and scheduled
sends across a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from tests.conftest import Service, Tokens, make_settings, running
from tests.fixtures.smtp_sink import SMTPSink
from tests.integration.helpers import deliveries, eventually, send
from tidings.kit.clock import FrozenClock
from tidings.models import Delivery, Digest
from tidings.preference.digests import build_due

ME = "/v1/me/preferences"
# Tuesday 1 December 2026, 21:30 UTC = 22:30 in Berlin (CET, UTC+1)
EVENING = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(EVENING)


@pytest.fixture
async def mailer(
    tmp_path: Path, database_url: str, smtp_sink: SMTPSink, clock: FrozenClock
) -> AsyncIterator[Service]:
    settings = make_settings(
        tmp_path,
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_starttls=False,
    )
    async with running(settings, clock=clock) as svc:
        r = await svc.client.put(
            "/v1/recipients/cand-1",
            json={"email": "ada@example.test", "timezone": "Europe/Berlin"},
            headers=Tokens(settings).service(),
        )
        assert r.status_code == 201
        yield svc


async def _put(svc: Service, tokens: Tokens, body: dict[str, Any]) -> dict[str, Any]:
    r = await svc.client.put(ME, json=body, headers=tokens.user("cand-1"))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def _email(
    svc: Service, tokens: Tokens, *, priority: str = "normal", category: str = "job", **extra: Any
) -> dict[str, Any]:
    accepted = await send(
        svc.client,
        tokens,
        recipients=["cand-1"],
        title=f"{category} news",
        body="b",
        category=category,
        priority=priority,
        channels=["in_app", "email"],
        **extra,
    )
    rows = await deliveries(svc.client, tokens, send_id=accepted["id"], channel="email")
    return {"send": accepted, "email": rows[0]}


async def test_get_shows_effective_values_and_their_sources(
    mailer: Service, tokens: Tokens
) -> None:
    r = await mailer.client.get(ME, headers=tokens.user("cand-1"))
    assert r.status_code == 200
    assert r.json() == {
        "channels": {"email": True, "sms": True, "push": True, "in_app": True},
        "categories": {},
        "matrix": {},
        "quiet_hours": None,
        "digest": {"mode": "off", "hour": 8, "weekday": "mon"},
        "source": {
            "channels": dict.fromkeys(("email", "sms", "push", "in_app"), "default"),
            "categories": {},
            "matrix": {},
            "quiet_hours": "default",
            "digest": "default",
        },
    }
    r = await mailer.client.put(
        "/v1/tenant/settings",
        json={"preference_defaults": {"channels": {"sms": False}, "categories": {"job": False}}},
        headers=tokens.admin(),
    )
    assert r.status_code == 200, r.text
    mine = await _put(
        mailer,
        tokens,
        {
            "categories": {"job": True, "brand_new_category": False},
            "matrix": {"offer": {"sms": True}},
        },
    )
    assert mine["channels"]["sms"] is False and mine["source"]["channels"]["sms"] == "tenant"
    assert mine["categories"] == {"brand_new_category": False, "job": True}
    assert mine["source"]["categories"] == {"brand_new_category": "recipient", "job": "recipient"}
    assert mine["matrix"] == {"offer": {"sms": True}}
    # omitted keys keep their value; null removes the recipient's own, the tenant's shows
    after = await _put(mailer, tokens, {"categories": {"job": None}})
    assert after["categories"] == {"brand_new_category": False, "job": False}
    assert after["source"]["categories"]["job"] == "tenant"
    assert after["matrix"] == {"offer": {"sms": True}}
    service_view = await mailer.client.get(
        "/v1/recipients/cand-1/preferences", headers=tokens.service()
    )
    assert service_view.json() == after
    unknown = await mailer.client.get("/v1/recipients/nobody/preferences", headers=tokens.service())
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"channels": {"webhook": False}},
        {"channels": {"email": "no"}},
        {"quiet_hours": {"start": "22:00", "end": "22:00"}},
        {"quiet_hours": {"start": "25:00", "end": "07:00"}},
        {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}},
        {"digest": {"mode": "hourly"}},
        {"digest": {"mode": "daily", "hour": 24}},
        {"categories": {"Not A Slug": True}},
        {"unknown": 1},
    ],
)
async def test_bad_preferences_are_422_and_change_nothing(
    mailer: Service, tokens: Tokens, body: dict[str, Any]
) -> None:
    before = (await mailer.client.get(ME, headers=tokens.user("cand-1"))).json()
    r = await mailer.client.put(ME, json=body, headers=tokens.user("cand-1"))
    assert r.status_code == 422, r.text
    assert (await mailer.client.get(ME, headers=tokens.user("cand-1"))).json() == before


async def test_switches_suppress_and_urgent_bypasses_them(mailer: Service, tokens: Tokens) -> None:
    await _put(
        mailer,
        tokens,
        {
            "channels": {"email": False},
            "categories": {"job": False},
            "matrix": {"job": {"email": True}},
        },
    )
    # the matrix cell beats the category switch, which beats the channel switch
    job = await _email(mailer, tokens, category="job")
    assert job["email"]["reason"] != "preference"
    inbox_rows = await deliveries(
        mailer.client, tokens, send_id=job["send"]["id"], channel="in_app"
    )
    assert (inbox_rows[0]["status"], inbox_rows[0]["reason"]) == ("suppressed", "preference")
    inbox = (await mailer.client.get("/v1/me/notifications", headers=tokens.user("cand-1"))).json()
    assert inbox["items"] == []  # suppressed in-app means nothing in the inbox
    other = await _email(mailer, tokens, category="offer")
    assert (other["email"]["status"], other["email"]["reason"]) == ("suppressed", "preference")
    urgent = await _email(mailer, tokens, category="offer", priority="urgent")
    assert urgent["email"]["reason"] != "preference"


async def test_quiet_hours_hold_email_across_midnight_and_not_in_app(
    mailer: Service, tokens: Tokens, clock: FrozenClock, smtp_sink: SMTPSink
) -> None:
    await _put(mailer, tokens, {"quiet_hours": {"start": "22:00", "end": "07:00"}})
    held = await _email(mailer, tokens)
    assert (held["email"]["status"], held["email"]["reason"]) == ("scheduled", "quiet_hours")
    # 07:00 in Berlin on Wednesday is 06:00 UTC
    assert held["email"]["not_before"] == "2026-12-02T06:00:00Z"
    inbox = await deliveries(mailer.client, tokens, send_id=held["send"]["id"], channel="in_app")
    assert inbox[0]["status"] == "delivered"
    urgent = await _email(mailer, tokens, priority="urgent")
    assert urgent["email"]["reason"] != "quiet_hours"
    clock.set(datetime(2026, 12, 2, 6, 0, 1, tzinfo=UTC))

    async def sent() -> bool:
        rows = await deliveries(mailer.client, tokens, send_id=held["send"]["id"], channel="email")
        return rows[0]["status"] == "sent"

    await eventually(sent)


async def test_quiet_hours_end_on_the_night_clocks_spring_forward(
    mailer: Service, tokens: Tokens, clock: FrozenClock
) -> None:
    # Saturday 28 March 2026, 23:00 in Berlin (CET); that night 02:00 becomes 03:00
    clock.set(datetime(2026, 3, 28, 22, 0, tzinfo=UTC))
    await _put(mailer, tokens, {"quiet_hours": {"start": "22:00", "end": "07:00"}})
    held = await _email(mailer, tokens)
    # 07:00 CEST (UTC+2) on Sunday
    assert held["email"]["not_before"] == "2026-03-29T05:00:00Z"


async def test_daily_digest_folds_low_and_normal_email_once(
    mailer: Service, tokens: Tokens, clock: FrozenClock, smtp_sink: SMTPSink
) -> None:
    await _put(mailer, tokens, {"digest": {"mode": "daily", "hour": 8}})
    folded = [await _email(mailer, tokens, category=c) for c in ("job", "job", "candidate")]
    for entry in folded:
        assert (entry["email"]["status"], entry["email"]["reason"]) == ("scheduled", "digest")
        assert entry["email"]["not_before"] == "2026-12-02T07:00:00Z"  # 08:00 in Berlin
    high = await _email(mailer, tokens, priority="high")
    assert high["email"]["reason"] != "digest"
    (sent_now,) = await smtp_sink.wait_for_messages_async(1)
    assert sent_now.message["Subject"] == "job news"

    clock.set(datetime(2026, 12, 2, 7, 0, 5, tzinfo=UTC))
    await smtp_sink.wait_for_messages_async(2)
    digest = smtp_sink.messages[1].message
    assert digest["Subject"] == "Your daily digest: 3 updates"
    text = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.count("job news") == 2 and "candidate news" in text
    for entry in folded:
        (row,) = await deliveries(
            mailer.client, tokens, send_id=entry["send"]["id"], channel="email"
        )
        assert (row["status"], row["reason"]) == ("sent", "digest")
    await asyncio.sleep(0.3)
    assert len(smtp_sink.messages) == 2  # nothing is sent twice


async def test_two_schedulers_build_one_digest_with_every_item_once(
    tmp_path: Path, database_url: str, tokens: Tokens
) -> None:
    clock = FrozenClock(EVENING)
    settings = make_settings(tmp_path, database_url)
    async with (
        running(settings, clock=clock, run_deliveries=False) as one,
        running(settings, clock=clock, run_deliveries=False) as two,
    ):
        await one.client.put(
            "/v1/recipients/cand-1",
            json={"email": "ada@example.test", "timezone": "Europe/Berlin"},
            headers=tokens.service(),
        )
        await _put(one, tokens, {"digest": {"mode": "weekly", "weekday": "fri", "hour": 9}})
        for _ in range(5):
            await _email(one, tokens)
        clock.set(datetime(2026, 12, 4, 8, 0, 1, tzinfo=UTC))  # Friday 09:00 in Berlin
        built = await asyncio.gather(*(build_due(s.ctx) for s in (one, two, one, two)))
        assert sum(built) == 1
        async with one.ctx.db.transaction(write=False) as session:
            digests = (await session.scalars(select(Digest))).all()
            assert [(d.period_key, d.items) for d in digests] == [("weekly:2026-W49", 5)]
            folded = await session.scalar(
                select(func.count()).where(
                    Delivery.reason == "digest", Delivery.provider_message_id == digests[0].send_id
                )
            )
            assert folded == 5
        # an item of that period committed after its digest was built (a send that raced
        # the scheduler) goes into the next week's digest instead of being lost
        late = await _email(one, tokens)
        assert late["email"]["not_before"] == "2026-12-11T08:00:00Z"
        async with one.ctx.db.transaction() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == late["email"]["id"])
                .values(digest_key="weekly:2026-W49", not_before=clock.now())
            )
        assert await build_due(two.ctx) == 0
        (row,) = await deliveries(one.client, tokens, send_id=late["send"]["id"], channel="email")
        assert (row["status"], row["not_before"]) == ("scheduled", "2026-12-11T08:00:00Z")


async def test_a_restart_fires_late_scheduled_sends_unless_expired(
    tmp_path: Path, database_url: str, tokens: Tokens
) -> None:
    clock = FrozenClock(EVENING)
    settings = make_settings(tmp_path, database_url)
    async with running(settings, clock=clock, run_deliveries=False) as svc:
        due = await send(
            svc.client,
            tokens,
            recipients=["cand-1"],
            title="Later",
            body="b",
            send_at=(EVENING + timedelta(minutes=5)).isoformat(),
        )
        expiring = await send(
            svc.client,
            tokens,
            recipients=["cand-1"],
            title="Expiring",
            body="b",
            send_at=(EVENING + timedelta(minutes=5)).isoformat(),
            expires_at=(EVENING + timedelta(minutes=10)).isoformat(),
        )
    clock.set(EVENING + timedelta(hours=1))  # the service was down past both
    async with running(settings, clock=clock) as svc:

        async def settled_both() -> tuple[str, str] | None:
            a = await deliveries(svc.client, tokens, send_id=due["id"])
            b = await deliveries(svc.client, tokens, send_id=expiring["id"])
            states = (a[0]["status"], b[0]["status"])
            active = {"scheduled", "pending", "sending"}
            return None if active & set(states) else states

        assert await eventually(settled_both) == ("delivered", "suppressed")
        inbox = await svc.client.get("/v1/me/notifications", headers=tokens.user("cand-1"))
        assert [i["title"] for i in inbox.json()["items"]] == ["Later"]
