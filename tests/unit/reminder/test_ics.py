from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event

from tidings.reminder.ics import (
    PRODID,
    CalendarEvent,
    build_ics,
    calendar_attachment,
    escape_text,
    fold_line,
    stable_uid,
)

BERLIN = ZoneInfo("Europe/Berlin")
UID = "0b6f1f3e-3c55-5a4e-9d67-2f1f4a0f8c11@acme.example"


def make_event(**overrides: Any) -> CalendarEvent:
    values: dict[str, Any] = {
        "uid": UID,
        "method": "REQUEST",
        "sequence": 0,
        "start": datetime(2026, 5, 4, 14, 30, tzinfo=BERLIN),
        "duration": timedelta(minutes=45),
        "summary": "Interview: Backend engineer",
        "description": "Meet the team",
        "location": "Acme HQ, room 4",
        "organizer": "jobs@acme.example",
        "organizer_name": "Acme Hiring",
        "attendees": [("ann@example.com", "Ann Lee"), ("bob@acme.example", None)],
        "url": "https://tidings.example/reminders/r-1",
        "stamp": datetime(2026, 4, 20, 9, 0, 5, tzinfo=UTC),
    }
    values.update(overrides)
    return CalendarEvent(**values)


def parse(ics: bytes) -> tuple[Calendar, Event]:
    calendar = Calendar.from_ical(ics)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, Event)
    return calendar, event


def content_lines(ics: bytes) -> list[str]:
    """The unfolded content lines."""
    return ics.decode("utf-8").replace("\r\n ", "").split("\r\n")[:-1]


def prop(ics: bytes, name: str) -> list[str]:
    return [line for line in content_lines(ics) if line.split(":")[0].split(";")[0] == name]


def attendees(event: Event) -> list[Any]:
    value = event.get("ATTENDEE")
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def test_request_round_trips() -> None:
    calendar, event = parse(build_ics(make_event()))

    assert str(calendar["PRODID"]) == PRODID == "-//Tidings//Interview reminders//EN"
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["CALSCALE"]) == "GREGORIAN"
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == UID
    assert event.decoded("SEQUENCE") == 0
    assert event.decoded("DTSTAMP") == datetime(2026, 4, 20, 9, 0, 5, tzinfo=UTC)
    assert event.decoded("DTSTART") == datetime(2026, 5, 4, 12, 30, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2026, 5, 4, 13, 15, tzinfo=UTC)
    assert str(event["SUMMARY"]) == "Interview: Backend engineer"
    assert str(event["DESCRIPTION"]) == "Meet the team"
    assert str(event["LOCATION"]) == "Acme HQ, room 4"
    assert str(event["URL"]) == "https://tidings.example/reminders/r-1"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["ORGANIZER"]) == "mailto:jobs@acme.example"
    assert event["ORGANIZER"].params["CN"] == "Acme Hiring"
    ann, bob = attendees(event)
    assert str(ann) == "mailto:ann@example.com"
    assert dict(ann.params) == {
        "CN": "Ann Lee",
        "ROLE": "REQ-PARTICIPANT",
        "PARTSTAT": "NEEDS-ACTION",
        "RSVP": "TRUE",
    }
    assert str(bob) == "mailto:bob@acme.example"
    assert "CN" not in bob.params


def test_reschedule_keeps_the_uid_and_raises_the_sequence() -> None:
    first = make_event()
    moved = dataclasses.replace(
        first, sequence=first.sequence + 1, start=first.start + timedelta(days=1)
    )

    _, before = parse(build_ics(first))
    calendar, after = parse(build_ics(moved))

    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(after["UID"]) == str(before["UID"]) == UID
    assert after.decoded("SEQUENCE") == 1
    assert after.decoded("DTSTART") == datetime(2026, 5, 5, 12, 30, tzinfo=UTC)


def test_cancel() -> None:
    ics = build_ics(make_event(method="CANCEL", sequence=2))

    calendar, event = parse(ics)

    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == UID
    assert event.decoded("SEQUENCE") == 2
    assert str(event["ORGANIZER"]) == "mailto:jobs@acme.example"
    assert [str(a) for a in attendees(event)] == [
        "mailto:ann@example.com",
        "mailto:bob@acme.example",
    ]
    # a cancellation asks for no reply
    assert all("RSVP" not in a.params for a in attendees(event))
    assert prop(ics, "STATUS") == ["STATUS:CANCELLED"]


def test_calendar_structure_and_crlf() -> None:
    ics = build_ics(make_event())

    assert ics.endswith(b"\r\n")
    assert b"\n" not in ics.replace(b"\r\n", b"")
    assert b"\r" not in ics.replace(b"\r\n", b"")
    lines = content_lines(ics)
    assert lines[:6] == [
        "BEGIN:VCALENDAR",
        f"PRODID:{PRODID}",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
    ]
    assert lines[-2:] == ["END:VEVENT", "END:VCALENDAR"]
    assert prop(ics, "ORGANIZER") == ["ORGANIZER;CN=Acme Hiring:mailto:jobs@acme.example"]
    assert prop(ics, "ATTENDEE")[0] == (
        "ATTENDEE;CN=Ann Lee;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE"
        ":mailto:ann@example.com"
    )


@pytest.mark.parametrize(
    ("start", "duration", "dtstart", "dtend"),
    [
        pytest.param(
            datetime(2026, 5, 4, 14, 30, tzinfo=BERLIN),
            timedelta(minutes=45),
            "20260504T123000Z",
            "20260504T131500Z",
            id="summer-time",
        ),
        pytest.param(
            # 01:30 CET, two hours across the switch to summer time at 02:00
            datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN),
            timedelta(hours=2),
            "20260329T003000Z",
            "20260329T023000Z",
            id="across-dst",
        ),
        pytest.param(
            datetime(2026, 1, 1, 9, 0, 59, 999_999, tzinfo=UTC),
            timedelta(hours=1),
            "20260101T090059Z",
            "20260101T100059Z",
            id="utc-microseconds-dropped",
        ),
    ],
)
def test_times_are_written_in_utc(
    start: datetime, duration: timedelta, dtstart: str, dtend: str
) -> None:
    ics = build_ics(make_event(start=start, duration=duration))

    assert prop(ics, "DTSTART") == [f"DTSTART:{dtstart}"]
    assert prop(ics, "DTEND") == [f"DTEND:{dtend}"]
    assert prop(ics, "DTSTAMP") == ["DTSTAMP:20260420T090005Z"]


@pytest.mark.parametrize(
    ("text", "written", "parsed"),
    [
        pytest.param("a;b", "a\\;b", "a;b", id="semicolon"),
        pytest.param("a,b", "a\\,b", "a,b", id="comma"),
        pytest.param("C:\\new", "C:\\\\new", "C:\\new", id="backslash"),
        pytest.param("one\ntwo", "one\\ntwo", "one\ntwo", id="lf"),
        pytest.param("one\r\ntwo\rthree", "one\\ntwo\\nthree", "one\ntwo\nthree", id="crlf-cr"),
        pytest.param("\\n", "\\\\n", "\\n", id="backslash-n-is-not-a-newline"),
        pytest.param("bell\x07 nul\x00 tab\t", "bell nul tab\t", "bell nul tab\t", id="controls"),
        pytest.param("Zoë: 10:00", "Zoë: 10:00", "Zoë: 10:00", id="colon-and-utf8"),
    ],
)
@pytest.mark.parametrize("field", ["summary", "description", "location"])
def test_text_escaping(field: str, text: str, written: str, parsed: str) -> None:
    ics = build_ics(make_event(**{field: text}))

    assert prop(ics, field.upper()) == [f"{field.upper()}:{written}"]
    _, event = parse(ics)
    assert str(event[field.upper()]) == parsed


def test_empty_optional_fields_are_left_out() -> None:
    ics = build_ics(make_event(description="", location=None, url=None, organizer_name=None))

    assert prop(ics, "DESCRIPTION") == prop(ics, "LOCATION") == prop(ics, "URL") == []
    assert prop(ics, "ORGANIZER") == ["ORGANIZER:mailto:jobs@acme.example"]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("ü" * 200, id="two-octet"),
        pytest.param("€" * 200, id="three-octet"),
        pytest.param("🙂" * 200, id="four-octet"),
        pytest.param(("a€ü🙂; b, \\ c\n" * 40), id="mixed-and-escaped"),
        pytest.param("x" * 1000, id="ascii"),
    ],
)
def test_long_utf8_lines_are_folded(text: str) -> None:
    ics = build_ics(make_event(description=text, summary=text[:100]))

    physical = ics.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in physical)
    # a fold never splits a UTF-8 sequence: every physical line decodes on its own
    for line in physical:
        line.decode("utf-8")
    assert any(line.startswith(b" ") for line in physical)
    assert prop(ics, "DESCRIPTION") == [f"DESCRIPTION:{escape_text(text)}"]
    _, event = parse(ics)
    assert str(event["DESCRIPTION"]) == text
    assert str(event["SUMMARY"]) == text[:100]


@pytest.mark.parametrize(
    ("line", "folded"),
    [
        pytest.param("x" * 75, ["x" * 75], id="exactly-75"),
        pytest.param("x" * 76, ["x" * 75, " x"], id="76"),
        pytest.param("x" * 149, ["x" * 75, " " + "x" * 74], id="two-full-lines"),
        pytest.param("x" * 74 + "ü", ["x" * 74, " ü"], id="no-split-at-75"),
        pytest.param("x" * 73 + "ü", ["x" * 73 + "ü"], id="fits-at-75"),
        pytest.param("x" * 72 + "🙂", ["x" * 72, " 🙂"], id="four-octet-at-edge"),
    ],
)
def test_fold_line(line: str, folded: list[str]) -> None:
    result = fold_line(line)

    assert result.split("\r\n") == folded
    assert result.replace("\r\n ", "") == line


@pytest.mark.parametrize(
    ("name", "written", "parsed"),
    [
        pytest.param("Ann Lee", "CN=Ann Lee", "Ann Lee", id="plain"),
        pytest.param("Lee, Ann", 'CN="Lee, Ann"', "Lee, Ann", id="comma"),
        pytest.param("Team: Backend", 'CN="Team: Backend"', "Team: Backend", id="colon"),
        pytest.param("A;B", 'CN="A;B"', "A;B", id="semicolon"),
        pytest.param('Ann "The Boss" Lee', "CN=Ann The Boss Lee", "Ann The Boss Lee", id="dquote"),
        pytest.param('"Lee, Ann"', 'CN="Lee, Ann"', "Lee, Ann", id="quoted-comma"),
        pytest.param("Zoë Ünal", "CN=Zoë Ünal", "Zoë Ünal", id="utf8"),
        pytest.param("Ann\r\nATTENDEE:mailto:x@evil.example", None, None, id="crlf-flattened"),
    ],
)
def test_cn_quoting(name: str, written: str | None, parsed: str | None) -> None:
    ics = build_ics(make_event(organizer_name=name, attendees=[("ann@example.com", name)]))

    _, event = parse(ics)
    (ann,) = attendees(event)
    if written is None:
        # the name stays a parameter of the one ORGANIZER and the one ATTENDEE line
        assert len(prop(ics, "ATTENDEE")) == 1
        assert len(prop(ics, "ORGANIZER")) == 1
        assert str(ann) == "mailto:ann@example.com"
        assert ann.params["CN"] == "Ann ATTENDEE:mailto:x@evil.example"
        return
    assert prop(ics, "ORGANIZER") == [f"ORGANIZER;{written}:mailto:jobs@acme.example"]
    assert prop(ics, "ATTENDEE")[0].startswith(f"ATTENDEE;{written};ROLE=")
    assert event["ORGANIZER"].params["CN"] == parsed
    assert ann.params["CN"] == parsed
    assert str(ann) == "mailto:ann@example.com"


def test_name_of_only_quotes_is_left_out() -> None:
    ics = build_ics(make_event(organizer_name='""'))

    assert prop(ics, "ORGANIZER") == ["ORGANIZER:mailto:jobs@acme.example"]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(
            {"organizer": "jobs@acme.example\r\nATTENDEE:mailto:x@y"}, id="organizer-crlf"
        ),
        pytest.param({"organizer": "jobs@acme.example\n"}, id="organizer-lf"),
        pytest.param({"organizer": "jobs@acme.example\r"}, id="organizer-cr"),
        pytest.param({"attendees": [("ann@example.com\r\nX:y", None)]}, id="attendee-crlf"),
        pytest.param({"attendees": [("ann@\nexample.com", "Ann")]}, id="attendee-lf"),
    ],
)
def test_cr_lf_in_addresses_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="CR and LF"):
        make_event(**overrides)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        pytest.param({"organizer": "Acme <jobs@acme.example>"}, "bare", id="display-form"),
        pytest.param({"organizer": "jobs"}, "not an e-mail", id="no-at"),
        pytest.param({"attendees": [("@example.com", None)]}, "not an e-mail", id="no-local"),
        pytest.param({"attendees": []}, "at least one attendee", id="request-no-attendee"),
        pytest.param({"start": datetime(2026, 5, 4, 14, 30)}, "time zone", id="naive-start"),
        pytest.param({"stamp": datetime(2026, 4, 20, 9, 0)}, "time zone", id="naive-stamp"),
        pytest.param({"duration": timedelta(0)}, "positive", id="zero-duration"),
        pytest.param({"sequence": -1}, "negative", id="negative-sequence"),
        pytest.param({"sequence": True}, "integer", id="bool-sequence"),
        pytest.param({"method": "PUBLISH"}, "REQUEST or CANCEL", id="method"),
        pytest.param({"method": "CANCEL", "status": "CONFIRMED"}, "CANCELLED", id="cancel-ok"),
        pytest.param({"status": "CANCELLED"}, "METHOD:CANCEL", id="request-cancelled"),
        pytest.param({"uid": "a\r\nb"}, "UID", id="uid-crlf"),
        pytest.param({"uid": " "}, "UID", id="uid-blank"),
        pytest.param({"url": "https://x.example/a b"}, "URL", id="url-space"),
        pytest.param({"url": "https://x.example/\r\nX:y"}, "URL", id="url-crlf"),
    ],
)
def test_invalid_events_are_refused(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_event(**overrides)


def test_cancel_without_attendees_is_allowed() -> None:
    calendar, event = parse(build_ics(make_event(method="CANCEL", attendees=[])))

    assert str(calendar["METHOD"]) == "CANCEL"
    assert attendees(event) == []


def test_attendees_are_frozen() -> None:
    people: list[tuple[str, str | None]] = [("ann@example.com", "Ann Lee")]
    event = make_event(attendees=people)
    people.append(("eve@example.com", None))

    assert event.attendees == (("ann@example.com", "Ann Lee"),)
    assert hash(event) == hash(make_event(attendees=[("ann@example.com", "Ann Lee")]))


def test_build_is_deterministic() -> None:
    assert build_ics(make_event()) == build_ics(make_event())


def test_stable_uid() -> None:
    uid = stable_uid("acme", "0190a4c2-7d1e-7000-8000-000000000001", "Mail.Acme.Example")

    assert uid == stable_uid("acme", "0190a4c2-7d1e-7000-8000-000000000001", "mail.acme.example")
    local, _, domain = uid.partition("@")
    assert domain == "mail.acme.example"
    assert "acme" not in local
    assert uid != stable_uid("acme", "0190a4c2-7d1e-7000-8000-000000000002", "mail.acme.example")
    assert uid != stable_uid("globex", "0190a4c2-7d1e-7000-8000-000000000001", "mail.acme.example")
    # the tenant/reminder split cannot be shifted to produce the same UID
    assert stable_uid("a.b", "c", "x.example") != stable_uid("a", "b.c", "x.example")
    assert stable_uid("t", "r", "bücher.example").endswith("@xn--bcher-kva.example")
    _, event = parse(build_ics(make_event(uid=uid)))
    assert str(event["UID"]) == uid


@pytest.mark.parametrize(
    ("tenant", "reminder_id", "domain", "match"),
    [
        pytest.param("", "r", "x.example", "empty", id="empty-tenant"),
        pytest.param("t", "", "x.example", "empty", id="empty-reminder"),
        pytest.param("a/b", "r", "x.example", "'/'", id="slash-in-tenant"),
        pytest.param("t", "r\r\n", "x.example", "control", id="crlf"),
        pytest.param("t", "r", "x.example\r\nX", "domain", id="domain-crlf"),
        pytest.param("t", "r", "", "domain", id="empty-domain"),
        pytest.param("t", "r", "a@b.example", "domain", id="domain-with-at"),
        pytest.param("t", "r", "under_score.example", "domain", id="not-a-hostname"),
    ],
)
def test_stable_uid_refuses_bad_input(
    tenant: str, reminder_id: str, domain: str, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        stable_uid(tenant, reminder_id, domain)


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_calendar_attachment(method: str) -> None:
    event = make_event(method=method)

    attachment = calendar_attachment(event)

    assert attachment.filename == "invite.ics"
    assert attachment.content_type == f"text/calendar; method={method}; charset=UTF-8"
    assert attachment.content == build_ics(event)
