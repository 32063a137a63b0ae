from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from tidings.channels.base import Attachment, EmailContent, OutboundMessage, PermanentSendError
from tidings.channels.email import FALLBACK_DOMAIN, build_mime, envelope, message_id
from tidings.reminder.ics import CalendarEvent, calendar_attachment

DEFAULT_SENDER = "Tidings <no-reply@tidings.example>"
ICS = (
    b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
CALENDAR_FILE = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
PDF = Attachment("offer.pdf", "application/pdf", b"%PDF-1.7\x00\xff binary")


def make_message(**overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "delivery_id": "0190a4c2-7d1e-7000-8000-000000000001",
        "tenant": "acme",
        "channel": "email",
        "target": "ann@example.com",
        "category": "application",
        "priority": "normal",
        "title": "Your application",
        "body": "Thanks for applying",
        "email": EmailContent(
            subject="Your application", text="Hello Ann", html="<p>Hello Ann</p>"
        ),
    }
    values.update(overrides)
    return OutboundMessage(**values)


def reparse(mime: EmailMessage) -> EmailMessage:
    parsed = BytesParser(policy=default_policy).parsebytes(mime.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {},
            {"From": DEFAULT_SENDER, "To": "ann@example.com", "Subject": "Your application"},
            id="defaults",
        ),
        pytest.param(
            {"sender": "Acme Hiring <jobs@acme.example>"},
            {"From": "Acme Hiring <jobs@acme.example>"},
            id="sender-overrides-default",
        ),
        pytest.param(
            {"reply_to": "recruiter@acme.example"},
            {"Reply-To": "recruiter@acme.example"},
            id="reply-to",
        ),
        pytest.param({}, {"Reply-To": None}, id="no-reply-to"),
        pytest.param(
            {"email": EmailContent(subject="Interview\non Monday\n", text="t", html="<p>t</p>")},
            {"Subject": "Interview on Monday"},
            id="subject-newlines-folded",
        ),
        pytest.param(
            {"email": EmailContent(subject="Grüße, Zoë", text="t", html="<p>t</p>")},
            {"Subject": "Grüße, Zoë"},
            id="non-ascii-subject",
        ),
        pytest.param(
            {
                "headers": {
                    "List-Unsubscribe": "<https://t.example/v1/unsubscribe/abc>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                }
            },
            {
                "List-Unsubscribe": "<https://t.example/v1/unsubscribe/abc>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            id="extra-headers",
        ),
    ],
)
def test_headers(overrides: dict[str, Any], expected: dict[str, str | None]) -> None:
    mime = reparse(build_mime(make_message(**overrides), default_sender=DEFAULT_SENDER))

    for name, value in expected.items():
        assert (None if mime[name] is None else str(mime[name])) == value
    assert mime["MIME-Version"] == "1.0"


def test_date_is_current_utc() -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    mime = build_mime(make_message(), default_sender=DEFAULT_SENDER)

    sent_at = parsedate_to_datetime(str(mime["Date"]))
    assert sent_at.utcoffset() == timedelta(0)
    assert before <= sent_at <= datetime.now(UTC) + timedelta(seconds=1)


def test_messages_share_header_classes_not_values() -> None:
    first = build_mime(make_message(target="ann@example.com"), default_sender=DEFAULT_SENDER)
    second = build_mime(
        make_message(target="bob@example.com", delivery_id="0190a4c2-7d1e-7000-8000-000000000002"),
        default_sender=DEFAULT_SENDER,
    )

    for name in ("To", "Message-ID", "From"):
        assert type(first[name]) is type(second[name])
    assert (str(first["To"]), str(second["To"])) == ("ann@example.com", "bob@example.com")
    assert first["Message-ID"] != second["Message-ID"]


@pytest.mark.parametrize(
    ("text", "html"),
    [
        pytest.param("Hello Ann", "<p>Hello Ann</p>", id="ascii"),
        pytest.param("Grüße, Zoë — 👋", "<p>Grüße, Zoë — 👋</p>", id="non-ascii"),
        pytest.param("x" * 2000, "<p>" + "y" * 2000 + "</p>", id="long-lines"),
    ],
)
def test_text_then_html_alternatives(text: str, html: str) -> None:
    message = make_message(email=EmailContent(subject="s", text=text, html=html))

    mime = reparse(build_mime(message, default_sender=DEFAULT_SENDER))

    assert mime.get_content_type() == "multipart/alternative"
    plain, rich = mime.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert rich.get_content_type() == "text/html"
    assert plain.get_content_charset() == rich.get_content_charset() == "utf-8"
    assert plain.get_content().rstrip("\n") == text
    assert rich.get_content().rstrip("\n") == html
    assert plain["MIME-Version"] is None


@pytest.mark.parametrize(
    ("sender", "delivery_id", "expected"),
    [
        pytest.param(None, "d-1", "<d-1@tidings.example>", id="default-sender-domain"),
        pytest.param("Jobs <jobs@Acme.Example>", "d-2", "<d-2@acme.example>", id="lowercased"),
        pytest.param("jobs@bücher.example", "d-3", "<d-3@xn--bcher-kva.example>", id="idna"),
        pytest.param("jobs@[10.0.0.1]", "d-5", f"<d-5@{FALLBACK_DOMAIN}>", id="literal"),
    ],
)
def test_message_id(sender: str | None, delivery_id: str, expected: str) -> None:
    message = make_message(sender=sender, delivery_id=delivery_id)

    first = build_mime(message, default_sender=DEFAULT_SENDER)
    retry = build_mime(message, default_sender=DEFAULT_SENDER)

    assert first["Message-ID"] == retry["Message-ID"] == expected


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        pytest.param("no-reply", f"<d-1@{FALLBACK_DOMAIN}>", id="no-domain"),
        pytest.param("x@under_score.example", f"<d-1@{FALLBACK_DOMAIN}>", id="not-a-hostname"),
        pytest.param("X <x@Mail.Example>", "<d-1@mail.example>", id="display-name"),
    ],
)
def test_message_id_domain(sender: str, expected: str) -> None:
    assert message_id("d-1", sender) == expected


def test_message_id_differs_per_delivery() -> None:
    ids = {
        str(
            build_mime(make_message(delivery_id=f"d-{n}"), default_sender=DEFAULT_SENDER)[
                "Message-ID"
            ]
        )
        for n in range(3)
    }
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("attachment", "content_type", "params"),
    [
        pytest.param(
            # a calendar file without an iTIP method is no invitation: a plain attachment
            Attachment("holidays.ics", "text/calendar", CALENDAR_FILE),
            "text/calendar",
            {"charset": "utf-8"},
            id="ics-without-method",
        ),
        pytest.param(
            Attachment("notes.txt", "text/plain; charset=iso-8859-1", b"Gr\xfc\xdfe"),
            "text/plain",
            {"charset": "iso-8859-1"},
            id="text-keeps-charset",
        ),
        pytest.param(
            Attachment("offer.pdf", "application/pdf", b"%PDF-1.7\x00\xff binary"),
            "application/pdf",
            {},
            id="binary",
        ),
    ],
)
def test_attachments(attachment: Attachment, content_type: str, params: dict[str, str]) -> None:
    message = make_message(attachments=(attachment,))

    mime = reparse(build_mime(message, default_sender=DEFAULT_SENDER))

    assert mime.get_content_type() == "multipart/mixed"
    body, part = mime.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in body.iter_parts()] == ["text/plain", "text/html"]
    assert part.get_content_type() == content_type
    assert part.get_content_disposition() == "attachment"
    assert part.get_filename() == attachment.filename
    for name, value in params.items():
        assert part.get_param(name) == value
    assert part.get_payload(decode=True) == attachment.content


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        pytest.param({"email": None}, "no rendered e-mail", id="no-email-content"),
        pytest.param({"headers": {"Bcc": "spy@evil.example"}}, "Bcc", id="reserved-header"),
        pytest.param({"headers": {"message-id": "<x@y>"}}, "message-id", id="reserved-any-case"),
        pytest.param({"headers": {"X-Tag": "a\r\nBcc: x@y"}}, "cannot build", id="injection"),
        pytest.param({"delivery_id": "../../etc/passwd"}, "delivery id", id="unsafe-id"),
        pytest.param(
            {"attachments": (Attachment("a", "not a type", b""),)},
            "content type",
            id="bad-attachment-type",
        ),
    ],
)
def test_unbuildable_messages_fail_permanently(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(PermanentSendError, match=match) as caught:
        build_mime(make_message(**overrides), default_sender=DEFAULT_SENDER)
    assert caught.value.address_rejected is False


@pytest.mark.parametrize(
    ("overrides", "address_rejected"),
    [
        pytest.param({"target": "not an address"}, True, id="target-without-domain"),
        pytest.param({"target": "a@example.com, b@example.com"}, True, id="two-targets"),
        pytest.param({"target": "a@example.com> NOTIFY=NEVER"}, True, id="smuggled-parameter"),
        pytest.param({"target": "a@example.com\r\nBcc: b@example.com"}, True, id="crlf"),
        pytest.param({"target": ""}, True, id="empty-target"),
        pytest.param({"sender": "Acme Hiring"}, False, id="sender-without-address"),
    ],
)
def test_bad_addresses_fail_permanently(overrides: dict[str, Any], address_rejected: bool) -> None:
    with pytest.raises(PermanentSendError) as caught:
        build_mime(make_message(**overrides), default_sender=DEFAULT_SENDER)

    assert caught.value.code == "invalid_address"
    assert caught.value.address_rejected is address_rejected


@pytest.mark.parametrize(
    ("target", "recipient"),
    [
        pytest.param("ann@example.com", "ann@example.com", id="bare"),
        pytest.param("Ann Lee <ann@example.com>", "ann@example.com", id="display-name"),
        pytest.param('"ann lee"@example.com', '"ann lee"@example.com', id="quoted-local-part"),
    ],
)
def test_envelope(target: str, recipient: str) -> None:
    mime = build_mime(
        make_message(target=target, sender="Acme <jobs@acme.example>"),
        default_sender=DEFAULT_SENDER,
    )

    assert envelope(mime) == ("jobs@acme.example", recipient)


def test_message_is_not_modified() -> None:
    message = make_message(headers={"X-Tag": "a"})
    snapshot = dataclasses.replace(message)

    build_mime(message, default_sender=DEFAULT_SENDER)

    assert message == snapshot


def make_invitation(method: str = "REQUEST") -> Attachment:
    event = CalendarEvent(
        uid="0b6f1f3e-3c55-5a4e-9d67-2f1f4a0f8c11@acme.example",
        method="CANCEL" if method == "CANCEL" else "REQUEST",
        sequence=1 if method == "CANCEL" else 0,
        start=datetime(2026, 5, 4, 14, 30, tzinfo=ZoneInfo("Europe/Berlin")),
        duration=timedelta(minutes=45),
        summary="Interview: Backend engineer",
        description="Meet the team; bring questions, " + "ü" * 100,
        location="Acme HQ, room 4",
        organizer="jobs@acme.example",
        organizer_name="Acme Hiring",
        attendees=[("ann@example.com", "Lee, Ann")],
        stamp=datetime(2026, 4, 20, 9, 0, tzinfo=UTC),
    )
    return calendar_attachment(event)


def invitation_parts(mime: EmailMessage) -> tuple[MIMEPart, MIMEPart, list[MIMEPart]]:
    """(the inline calendar alternative, the application/ics file, the other attachments)"""
    assert mime.get_content_type() == "multipart/mixed"
    body, *files = mime.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    alternatives = list(body.iter_parts())
    assert [p.get_content_type() for p in alternatives] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    ics_files = [p for p in files if p.get_content_type() == "application/ics"]
    assert len(ics_files) == 1
    others = [p for p in files if p is not ics_files[0]]
    return alternatives[2], ics_files[0], others


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_calendar_invitation_is_an_alternative_and_an_attachment(method: str) -> None:
    invitation = make_invitation(method)
    message = make_message(attachments=(invitation,))

    raw = build_mime(message, default_sender=DEFAULT_SENDER).as_bytes()
    mime = message_from_bytes(raw, policy=default_policy)
    assert isinstance(mime, EmailMessage)

    inline, attached, others = invitation_parts(mime)
    assert others == []
    # the alternative: what Outlook, Gmail and Apple Mail show as an invitation
    assert inline.get_param("method") == method
    assert str(inline.get_param("charset")).lower() == "utf-8"
    assert inline.get_content_disposition() is None
    assert inline.get_filename() is None
    assert inline["MIME-Version"] is None
    # byte for byte, CRLF line ends and folding included
    payload = inline.get_payload(decode=True)
    assert payload == invitation.content
    assert isinstance(payload, bytes)
    calendar = Calendar.from_ical(payload)
    assert str(calendar["METHOD"]) == method
    # the file, for clients that only look at attachments
    assert attached.get_content_disposition() == "attachment"
    assert attached.get_filename() == "invite.ics"
    assert attached.get_param("name") == "invite.ics"
    assert attached.get_payload(decode=True) == invitation.content
    assert attached["MIME-Version"] is None
    assert mime["MIME-Version"] == "1.0"


def test_other_attachments_keep_their_place_and_form() -> None:
    invitation = make_invitation()
    notes = Attachment("notes.txt", "text/plain", b"bring your portfolio")
    message = make_message(attachments=(PDF, invitation, notes))

    mime = reparse(build_mime(message, default_sender=DEFAULT_SENDER))

    inline, attached, others = invitation_parts(mime)
    _, *files = mime.iter_parts()
    assert [p.get_filename() for p in files] == ["offer.pdf", "invite.ics", "notes.txt"]
    pdf, txt = others
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_payload(decode=True) == PDF.content
    assert txt.get_content_type() == "text/plain"
    assert txt.get_param("charset") == "utf-8"
    assert txt.get_payload(decode=True) == notes.content
    assert inline.get_payload(decode=True) == attached.get_payload(decode=True)


@pytest.mark.parametrize(
    ("content_type", "content", "method"),
    [
        pytest.param("text/calendar", ICS, "REQUEST", id="method-from-the-calendar"),
        pytest.param("text/calendar; method=request", ICS, "REQUEST", id="upper-cased"),
        pytest.param(
            "text/calendar; charset=utf-8",
            b"BEGIN:VCALENDAR\r\nMETH\r\n OD:CAN\r\n CEL\r\nEND:VCALENDAR\r\n",
            "CANCEL",
            id="folded-method-property",
        ),
        pytest.param("TEXT/Calendar; method=REQUEST", ICS, "REQUEST", id="type-any-case"),
    ],
)
def test_calendar_method(content_type: str, content: bytes, method: str) -> None:
    message = make_message(attachments=(Attachment("invite.ics", content_type, content),))

    mime = reparse(build_mime(message, default_sender=DEFAULT_SENDER))

    inline, attached, _ = invitation_parts(mime)
    assert inline.get_param("method") == method
    assert inline.get_payload(decode=True) == attached.get_payload(decode=True) == content


@pytest.mark.parametrize(
    ("attachments", "match"),
    [
        pytest.param(
            (Attachment("invite.ics", "text/calendar; method=CANCEL", ICS),),
            "METHOD:REQUEST",
            id="method-mismatch",
        ),
        pytest.param(
            (
                Attachment("a.ics", "text/calendar; method=REQUEST", ICS),
                Attachment("b.ics", "text/calendar; method=REQUEST", ICS),
            ),
            "only one calendar invitation",
            id="two-invitations",
        ),
        pytest.param(
            (Attachment("invite.ics", 'text/calendar; method="RE QUEST"', ICS),),
            "method",
            id="bad-method",
        ),
    ],
)
def test_unusable_invitations_fail_permanently(
    attachments: tuple[Attachment, ...], match: str
) -> None:
    with pytest.raises(PermanentSendError, match=match):
        build_mime(make_message(attachments=attachments), default_sender=DEFAULT_SENDER)


def test_repeated_headers_are_parsed_once_and_shared() -> None:
    first = build_mime(make_message(), default_sender=DEFAULT_SENDER)
    second = build_mime(
        make_message(delivery_id="0190a4c2-7d1e-7000-8000-000000000002", target="bo@example.com"),
        default_sender=DEFAULT_SENDER,
    )
    assert first["From"] is second["From"]
    assert first["Subject"] is second["Subject"]
    assert (str(first["To"]), str(second["To"])) == ("ann@example.com", "bo@example.com")
    assert first["Message-ID"] != second["Message-ID"]
    assert reparse(second)["To"] == "bo@example.com"
    assert reparse(first).get_body(("plain",)).get_content().strip() == "Hello Ann"


def test_a_shared_header_still_refuses_line_breaks_every_time() -> None:
    injected = make_message(
        headers={"List-Unsubscribe-Post": "List-Unsubscribe=One-Click\r\nBcc: x@y"}
    )
    for _ in range(2):
        with pytest.raises(PermanentSendError, match="cannot build"):
            build_mime(injected, default_sender=DEFAULT_SENDER)
