"""Interview reminders end to end, with time travel: invitations with a calendar event
(parsed back with the icalendar package), reminders at each offset, reschedule and
cancel, each party in their own zone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar
import pytest

from tests.conftest import Service, Tokens, make_settings, running
from tests.fixtures.smtp_sink import SMTPSink
from tests.integration.helpers import deliveries, eventually
from tidings.kit.clock import FrozenClock

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
INTERVIEW = START + timedelta(days=2)  # 2026-12-03 09:00 UTC


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
async def svc(
    tmp_path: Path, database_url: str, smtp_sink: SMTPSink, clock: FrozenClock
) -> AsyncIterator[Service]:
    settings = make_settings(
        tmp_path,
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_starttls=False,
    )
    tokens = Tokens(settings)
    async with running(settings, clock=clock) as service:
        for rid, body in {
            "cand-1": {"name": "Ada", "email": "ada@example.test", "timezone": "Europe/Berlin"},
            "emp-1": {"name": "Bo", "email": "bo@acme.test", "timezone": "America/New_York"},
        }.items():
            r = await service.client.put(
                f"/v1/recipients/{rid}", json=body, headers=tokens.service()
            )
            assert r.status_code == 201, r.text
        r = await service.client.put(
            "/v1/tenant/settings",
            json={"email_from": "Acme Hiring <jobs@acme.test>"},
            headers=tokens.admin(),
        )
        assert r.status_code == 200
        yield service


def _body(**change: Any) -> dict[str, Any]:
    return {
        "application_id": "app-7",
        "candidate_id": "cand-1",
        "employer_id": "emp-1",
        "interview_time": INTERVIEW.isoformat(),
        "duration_minutes": 45,
        "location": "Room 4, Berlin office",
        "offsets_minutes": [1440, 60],
        "data": {"job_title": "Engineer", "company_name": "Acme"},
        **change,
    }


def _calendar(message: EmailMessage) -> icalendar.Calendar:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert parts, message
    return icalendar.Calendar.from_ical(parts[0].get_payload(decode=True))


def _event(message: EmailMessage) -> Any:
    calendar = _calendar(message)
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def _never_fire(rows: list[dict[str, Any]]) -> bool:
    """Every delivery of a reminder send is cancelled (or was never deliverable: the
    parties have no phone or browser for SMS and push)."""
    statuses = {d["status"] for d in rows}
    return "cancelled" in statuses and statuses <= {"cancelled", "suppressed"}


async def _mail(smtp_sink: SMTPSink, count: int) -> list[EmailMessage]:
    return [m.message for m in await smtp_sink.wait_for_messages_async(count)]


async def test_create_invites_both_parties_with_a_calendar_event(
    svc: Service, tokens: Tokens, smtp_sink: SMTPSink
) -> None:
    r = await svc.client.post("/v1/reminders", json=_body(), headers=tokens.service())
    assert r.status_code == 201, r.text
    reminder = r.json()
    assert reminder["sequence"] == 0 and reminder["skipped_offsets"] == []
    assert [x["offset_minutes"] for x in reminder["reminders"]] == [1440, 60]
    assert reminder["reminders"][0]["send_at"] == "2026-12-02T09:00:00Z"

    mails = {m["To"]: m for m in await _mail(smtp_sink, 2)}
    assert set(mails) == {"ada@example.test", "bo@acme.test"}
    for message in mails.values():
        calendar, event = _event(message)
        assert str(calendar["METHOD"]) == "REQUEST"
        assert str(event["UID"]) == reminder["uid"] and int(event["SEQUENCE"]) == 0
        assert event.decoded("DTSTART") == INTERVIEW
        assert event.decoded("DTEND") == INTERVIEW + timedelta(minutes=45)
        assert str(event["ORGANIZER"]).lower() == "mailto:jobs@acme.test"
        attendees = {str(a).lower() for a in event.get("ATTENDEE")}
        assert attendees == {"mailto:ada@example.test", "mailto:bo@acme.test"}
        assert str(event["LOCATION"]) == "Room 4, Berlin office"
    # each party reads the time in their own zone
    assert "10:00" in mails["ada@example.test"]["Subject"]  # Berlin, UTC+1
    assert "04:00" in mails["bo@acme.test"]["Subject"]  # New York, UTC-5
    for who in ("cand-1", "emp-1"):
        inbox = await svc.client.get("/v1/me/notifications", headers=tokens.user(who))
        assert [i["template"] for i in inbox.json()["items"]] == ["interview_scheduled"]


async def test_reminders_fire_at_each_offset_without_a_calendar_event(
    svc: Service, tokens: Tokens, smtp_sink: SMTPSink, clock: FrozenClock
) -> None:
    r = await svc.client.post("/v1/reminders", json=_body(), headers=tokens.service())
    assert r.status_code == 201
    await _mail(smtp_sink, 2)
    clock.set(INTERVIEW - timedelta(minutes=1440))

    async def reminded() -> list[dict[str, Any]]:
        inbox = await svc.client.get("/v1/me/notifications", headers=tokens.user("cand-1"))
        return [i for i in inbox.json()["items"] if i["template"] == "interview_reminder"]

    assert len(await eventually(reminded)) == 1
    mails = await _mail(smtp_sink, 4)
    reminder_mail = [m for m in mails if m["Subject"].startswith("Reminder")]
    assert len(reminder_mail) == 2
    assert all(
        not any(p.get_content_type() == "text/calendar" for p in m.walk()) for m in reminder_mail
    )
    clock.set(INTERVIEW - timedelta(minutes=60))

    async def twice() -> bool:
        return len(await reminded()) == 2

    await eventually(twice)


async def test_reschedule_moves_reminders_and_updates_the_event(
    svc: Service, tokens: Tokens, smtp_sink: SMTPSink, clock: FrozenClock
) -> None:
    created = (
        await svc.client.post("/v1/reminders", json=_body(), headers=tokens.service())
    ).json()
    await _mail(smtp_sink, 2)
    later = INTERVIEW + timedelta(days=1)
    r = await svc.client.patch(
        f"/v1/reminders/{created['id']}",
        json={"interview_time": later.isoformat(), "offsets_minutes": [120]},
        headers=tokens.service(),
    )
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["uid"] == created["uid"] and moved["sequence"] == 1
    assert [x["offset_minutes"] for x in moved["reminders"]] == [120]
    # the old reminders will never fire
    for old in created["reminders"]:
        rows = await deliveries(svc.client, tokens, send_id=old["send_id"])
        assert _never_fire(rows)
    updates = [m for m in await _mail(smtp_sink, 4) if "rescheduled" in m["Subject"]]
    assert len(updates) == 2
    calendar, event = _event(updates[0])
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == created["uid"] and int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART") == later
    # the old reminder time passes and nothing arrives; the new one fires
    clock.set(INTERVIEW - timedelta(minutes=1440))
    clock.set(later - timedelta(minutes=120))

    async def reminded() -> bool:
        inbox = await svc.client.get("/v1/me/notifications", headers=tokens.user("emp-1"))
        templates = [i["template"] for i in inbox.json()["items"]]
        return templates.count("interview_reminder") == 1

    await eventually(reminded)


async def test_cancel_withdraws_the_event_and_the_reminders(
    svc: Service, tokens: Tokens, smtp_sink: SMTPSink
) -> None:
    created = (
        await svc.client.post("/v1/reminders", json=_body(), headers=tokens.service())
    ).json()
    await _mail(smtp_sink, 2)
    r = await svc.client.delete(f"/v1/reminders/{created['id']}", headers=tokens.service())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["sequence"] == 1
    cancels = [m for m in await _mail(smtp_sink, 4) if "cancelled" in m["Subject"]]
    assert len(cancels) == 2
    calendar, event = _event(cancels[0])
    assert str(calendar["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == created["uid"] and int(event["SEQUENCE"]) == 1
    for old in created["reminders"]:
        rows = await deliveries(svc.client, tokens, send_id=old["send_id"])
        assert _never_fire(rows)
    # repeating it sends nothing more; changing it now is a conflict
    again = await svc.client.delete(f"/v1/reminders/{created['id']}", headers=tokens.service())
    assert again.status_code == 200 and again.json()["sequence"] == 1
    r = await svc.client.patch(
        f"/v1/reminders/{created['id']}", json={"duration_minutes": 30}, headers=tokens.service()
    )
    assert r.status_code == 409


async def test_past_offsets_are_skipped(svc: Service, tokens: Tokens) -> None:
    soon = START + timedelta(minutes=90)
    r = await svc.client.post(
        "/v1/reminders",
        json=_body(interview_time=soon.isoformat(), offsets_minutes=[1440, 60]),
        headers=tokens.service(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["skipped_offsets"] == [1440]
    assert [x["offset_minutes"] for x in r.json()["reminders"]] == [60]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(
            {"interview_time": (START - timedelta(hours=1)).isoformat()},
            "interview_time",
            id="past",
        ),
        pytest.param({"interview_time": "2026-12-03T09:00:00"}, "interview_time", id="no-zone"),
        pytest.param(
            {
                "interview_time": (START + timedelta(minutes=30)).isoformat(),
                "offsets_minutes": [60],
            },
            "offsets_minutes",
            id="all-reminders-past",
        ),
        pytest.param({"offsets_minutes": [0]}, "offsets_minutes", id="zero"),
        pytest.param({"offsets_minutes": [43_201]}, "offsets_minutes", id="too-far"),
        pytest.param({"offsets_minutes": [60, 60]}, "offsets_minutes", id="duplicate"),
        pytest.param({"offsets_minutes": list(range(1, 12))}, "offsets_minutes", id="eleven"),
        pytest.param({"offsets_minutes": []}, "offsets_minutes", id="none"),
        pytest.param({"employer_id": "cand-1"}, "body", id="same-party"),
        pytest.param({"duration_minutes": 0}, "duration_minutes", id="duration"),
        pytest.param({"data": {"interview_time": "x"}}, "body", id="reserved-data"),
    ],
)
async def test_invalid_reminders_are_422_and_send_nothing(
    svc: Service, tokens: Tokens, smtp_sink: SMTPSink, change: dict[str, Any], field: str
) -> None:
    r = await svc.client.post("/v1/reminders", json=_body(**change), headers=tokens.service())
    assert r.status_code == 422, r.text
    assert field in str(r.json()["errors"][0]["loc"])
    assert (await svc.client.get("/v1/reminders", headers=tokens.service())).json()["items"] == []
    assert await deliveries(svc.client, tokens) == []


async def test_participants_read_their_own_and_nobody_else_does(
    svc: Service, tokens: Tokens
) -> None:
    created = (
        await svc.client.post("/v1/reminders", json=_body(), headers=tokens.service())
    ).json()
    path = f"/v1/reminders/{created['id']}"
    for who in ("cand-1", "emp-1"):
        assert (await svc.client.get(path, headers=tokens.user(who))).status_code == 200
        listed = await svc.client.get("/v1/reminders", headers=tokens.user(who))
        assert [x["id"] for x in listed.json()["items"]] == [created["id"]]
    assert (await svc.client.get(path, headers=tokens.user("stranger"))).status_code == 404
    assert (await svc.client.get("/v1/reminders", headers=tokens.user("stranger"))).json()[
        "items"
    ] == []
    assert (await svc.client.get(path, headers=tokens.service("globex"))).status_code == 404
    # users read but never change
    r = await svc.client.delete(path, headers=tokens.user("cand-1"))
    assert r.status_code == 403
