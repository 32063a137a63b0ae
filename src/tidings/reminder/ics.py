"""A small RFC 5545 writer for interview invitations (iTIP REQUEST and CANCEL, RFC 5546).

Written by hand so the service has no calendar dependency at run time. Every time is
written in UTC ("Z" form), so no VTIMEZONE is needed; text is escaped, parameter values
are quoted where they must be, and content lines are folded at 75 octets without
splitting a UTF-8 character.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from tidings.channels.base import Attachment

Method = Literal["REQUEST", "CANCEL"]
Status = Literal["CONFIRMED", "CANCELLED"]

PRODID = "-//Tidings//Interview reminders//EN"
FILENAME = "invite.ics"
CRLF = "\r\n"
MAX_LINE_OCTETS = 75

_METHODS: frozenset[str] = frozenset({"REQUEST", "CANCEL"})
_STATUSES: frozenset[str] = frozenset({"CONFIRMED", "CANCELLED"})
# stable_uid hashes (tenant, reminder id) in this namespace: the UID stays the same for
# every version of one reminder and does not reveal the tenant's name (RFC 7986 5.3).
_UID_NAMESPACE = uuid.UUID("5b0c7d1e-2f64-4a8e-9c1d-7e3a6f0b9d24")
# CTL characters other than HTAB (RFC 5545 3.1: not allowed in TEXT or parameter values)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# the same, in TEXT, once newlines are "\n" (those are escaped, not dropped)
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NEWLINE = re.compile(r"\r\n|\r|\n")
# characters that a parameter value may only carry inside DQUOTEs (RFC 5545 3.1)
_NEEDS_QUOTES = re.compile(r"[;:,]")
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarEvent:
    """One interview as an iTIP message.

    ``organizer`` and the first item of each ``attendees`` pair are bare e-mail addresses
    (written as ``mailto:`` URIs); names are optional. ``status`` defaults to CONFIRMED
    for REQUEST and CANCELLED for CANCEL. ``stamp`` is DTSTAMP, when this version of the
    event was created. Raises ValueError for values that cannot form a valid calendar.
    """

    uid: str
    method: Method
    start: datetime
    duration: timedelta
    summary: str
    organizer: str
    stamp: datetime
    sequence: int = 0
    description: str = ""
    location: str | None = None
    organizer_name: str | None = None
    attendees: Sequence[tuple[str, str | None]] = ()
    url: str | None = None
    status: Status | None = None

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"method must be REQUEST or CANCEL, not {self.method!r}")
        if self.status is not None and self.status not in _STATUSES:
            raise ValueError(f"status must be CONFIRMED or CANCELLED, not {self.status!r}")
        if self.method == "CANCEL" and self.status == "CONFIRMED":
            raise ValueError("a CANCEL message must have STATUS:CANCELLED")
        if self.method == "REQUEST" and self.status == "CANCELLED":
            raise ValueError("a cancelled event is sent with METHOD:CANCEL, not REQUEST")
        if not self.uid.strip() or _CONTROL.search(self.uid):
            raise ValueError("the UID must be non-empty and on one line")
        if isinstance(self.sequence, bool) or not isinstance(self.sequence, int):
            raise ValueError("the sequence must be an integer")
        if self.sequence < 0:
            raise ValueError("the sequence must not be negative")
        _require_aware("start", self.start)
        _require_aware("stamp", self.stamp)
        if self.duration <= timedelta(0):
            raise ValueError("the duration must be positive")
        _check_address(self.organizer)
        attendees = tuple((email, name) for email, name in self.attendees)
        for email, _ in attendees:
            _check_address(email)
        if self.method == "REQUEST" and not attendees:
            raise ValueError("a REQUEST needs at least one attendee (RFC 5546 3.2.2)")
        if self.url is not None and (not self.url or re.search(r"[\x00-\x20\x7f]", self.url)):
            raise ValueError(f"{self.url!r} is not a usable URL")
        object.__setattr__(self, "attendees", attendees)

    @property
    def end(self) -> datetime:
        """The end in UTC (computed in UTC, so a DST change cannot stretch the interview)."""
        return self.start.astimezone(UTC) + self.duration

    @property
    def effective_status(self) -> Status:
        if self.status is not None:
            return self.status
        return "CANCELLED" if self.method == "CANCEL" else "CONFIRMED"


def build_ics(event: CalendarEvent) -> bytes:
    """Return ``event`` as an iCalendar object: UTF-8, CRLF line ends, folded lines."""
    return "".join(fold_line(line) + CRLF for line in _content_lines(event)).encode("utf-8")


def calendar_attachment(event: CalendarEvent) -> Attachment:
    """The ICS for an e-mail; the e-mail builder also offers it as the inline invitation."""
    return Attachment(
        filename=FILENAME,
        content_type=f"text/calendar; method={event.method}; charset=UTF-8",
        content=build_ics(event),
    )


def stable_uid(tenant: str, reminder_id: str, domain: str) -> str:
    """Return the UID of a reminder's event: the same for every update and cancellation.

    ``<uuid5 of tenant and reminder id>@<domain>``; the domain (for example the host of
    the tenant's From address) keeps UIDs from different installations apart.
    """
    if not tenant or not reminder_id:
        raise ValueError("tenant and reminder id must not be empty")
    if "/" in tenant:
        raise ValueError(f"tenant {tenant!r} must not contain '/'")
    if _CONTROL.search(tenant) or _CONTROL.search(reminder_id):
        raise ValueError("tenant and reminder id must not contain control characters")
    try:
        host = domain.strip().rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValueError(f"{domain!r} is not a domain name") from exc
    if not _DOMAIN.fullmatch(host):
        raise ValueError(f"{domain!r} is not a domain name")
    return f"{uuid.uuid5(_UID_NAMESPACE, f'{tenant}/{reminder_id}')}@{host}"


def escape_text(value: str) -> str:
    """Escape a TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newlines.

    Other control characters (not allowed in TEXT) are dropped.
    """
    value = _NEWLINE.sub("\n", value)
    value = _TEXT_CONTROL.sub("", value)
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def param_value(value: str) -> str:
    """Return ``value`` as a parameter value (RFC 5545 3.1).

    DQUOTE cannot appear in a parameter value at all, so it is removed; control
    characters become spaces; a value with ``;``, ``:`` or ``,`` is put in DQUOTEs.
    """
    value = " ".join(_CONTROL.sub(" ", value.replace('"', "")).split())
    return f'"{value}"' if _NEEDS_QUOTES.search(value) else value


def fold_line(line: str) -> str:
    """Fold a content line so no physical line exceeds 75 octets (RFC 5545 3.1).

    Continuation lines start with one space, which counts towards their 75 octets; a
    break never falls inside a UTF-8 sequence.
    """
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    limit = MAX_LINE_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            pieces.append("".join(current))
            current, size, limit = [], 0, MAX_LINE_OCTETS - 1
        current.append(char)
        size += width
    pieces.append("".join(current))
    return (CRLF + " ").join(pieces)


def _content_lines(event: CalendarEvent) -> Iterator[str]:
    yield "BEGIN:VCALENDAR"
    yield f"PRODID:{PRODID}"
    yield "VERSION:2.0"
    yield "CALSCALE:GREGORIAN"
    yield f"METHOD:{event.method}"
    yield "BEGIN:VEVENT"
    yield f"UID:{escape_text(event.uid)}"
    yield f"SEQUENCE:{event.sequence}"
    yield f"DTSTAMP:{_utc(event.stamp)}"
    yield f"DTSTART:{_utc(event.start)}"
    yield f"DTEND:{_utc(event.end)}"
    yield f"SUMMARY:{escape_text(event.summary)}"
    if event.description:
        yield f"DESCRIPTION:{escape_text(event.description)}"
    if event.location:
        yield f"LOCATION:{escape_text(event.location)}"
    if event.url:
        yield f"URL:{event.url}"
    yield f"ORGANIZER{_cn(event.organizer_name)}:mailto:{event.organizer}"
    # A CANCEL expects no answer (RFC 5546 3.2.5), so it asks for none.
    rsvp = ";RSVP=TRUE" if event.method == "REQUEST" else ""
    for email, name in event.attendees:
        yield (
            f"ATTENDEE{_cn(name)};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION{rsvp}:mailto:{email}"
        )
    yield f"STATUS:{event.effective_status}"
    yield "TRANSP:OPAQUE"
    yield "END:VEVENT"
    yield "END:VCALENDAR"


def _cn(name: str | None) -> str:
    if name is None:
        return ""
    value = param_value(name)
    return f";CN={value}" if value.strip('"') else ""


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must carry a time zone")


def _check_address(address: str) -> None:
    """Accept a bare addr-spec that can follow ``mailto:`` on one content line."""
    if "\r" in address or "\n" in address:
        raise ValueError(f"{address!r}: CR and LF are not allowed in an address")
    if re.search(r"[\x00-\x20\x7f<>\"]", address):
        raise ValueError(f"{address!r} is not a bare e-mail address")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{address!r} is not an e-mail address")
