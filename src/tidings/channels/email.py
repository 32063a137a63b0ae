"""The MIME form of an e-mail delivery, shared by the SMTP and the file provider."""

from __future__ import annotations

import functools
import re
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import AddressHeader, BaseHeader, ContentTypeHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.policy import default as default_policy
from email.utils import format_datetime, parseaddr
from typing import Any, cast

from tidings.channels.base import Attachment, OutboundMessage, PermanentSendError
from tidings.kit.clock import utcnow

FALLBACK_DOMAIN = "tidings.local"
# How e-mail is written for the wire: CRLF, and header lines up to RFC 5322's 998
# characters, so a long List-Unsubscribe link stays one URI (at 78, the library
# folds it into RFC 2047 encoded-words that mail providers no longer read as a link).
WIRE_POLICY = SMTP.clone(max_line_length=998)

# build_mime owns these; letting message.headers replace them could break the MIME
# structure or add recipients that the SMTP envelope would never deliver to.
RESERVED_HEADERS = frozenset(
    {
        "bcc",
        "cc",
        "content-disposition",
        "content-transfer-encoding",
        "content-type",
        "date",
        "from",
        "message-id",
        "mime-version",
        "reply-to",
        "subject",
        "to",
    }
)

# The delivery id becomes the left part of the Message-ID and, for the file provider, a
# file name: keep it to characters that are safe in both.
_DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
# iCalendar: a folded line continues after CRLF (or a bare LF) and one space or tab
_UNFOLD = re.compile(r"\r?\n[ \t]")
_METHOD_PROPERTY = re.compile(r"^METHOD:([^\r\n]*)\r?$", re.IGNORECASE | re.MULTILINE)
_ITIP_METHOD = re.compile(r"[A-Z][A-Z0-9-]*")


class _SharedHeaders(HeaderRegistry):
    """The standard header registry, reusing the parsed header for values that repeat.

    Parsing a header is most of the cost of building an e-mail, and a send to many
    recipients repeats most of them (From, Subject, Date within one second, the MIME
    headers of every part). A parsed header is immutable, so one object may sit in many
    messages; only the names below are shared, and the cache is bounded.
    """

    SHARED = frozenset(
        {
            "content-transfer-encoding",
            "content-type",
            "date",
            "from",
            "list-unsubscribe-post",
            "mime-version",
            "reply-to",
            "subject",
        }
    )

    def __init__(self) -> None:
        super().__init__()
        self._shared = functools.lru_cache(maxsize=2048)(super().__call__)
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        # the library builds a new class for every header it parses; build one per name
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if isinstance(value, str) and name.lower() in self.SHARED:
            return self._shared(name, value)
        return super().__call__(name, value)


# the library's default policy (CR/LF in a value still raises), with shared headers
_POLICY = default_policy.clone(header_factory=_SharedHeaders())


def build_mime(message: OutboundMessage, *, default_sender: str) -> EmailMessage:
    """Build the e-mail for ``message``: headers, text and HTML alternatives, attachments.

    The Message-ID depends only on the delivery id and the sender's domain, so every
    attempt of one delivery carries the same id and receivers can drop duplicates.
    Raises PermanentSendError when the message cannot form a valid e-mail.
    """
    content = message.email
    if content is None:
        raise PermanentSendError("the message has no rendered e-mail content")
    if not _DELIVERY_ID.fullmatch(message.delivery_id):
        raise PermanentSendError(f"delivery id {message.delivery_id!r} cannot form a Message-ID")

    sender = message.sender or default_sender
    mime = EmailMessage(policy=_POLICY)
    try:
        mime["To"] = message.target
    except ValueError as exc:
        raise PermanentSendError(
            f"cannot use {message.target!r} as an address: {exc}",
            code="invalid_address",
            address_rejected=True,
        ) from exc
    try:
        mime["From"] = sender
        if message.reply_to:
            mime["Reply-To"] = message.reply_to
        # Rendered subjects may end in a newline, which is not allowed in a header.
        mime["Subject"] = " ".join(content.subject.split())
        mime["Date"] = format_datetime(utcnow())
        mime["Message-ID"] = message_id(message.delivery_id, sender)
        for name, value in message.headers.items():
            if name.lower() in RESERVED_HEADERS:
                raise PermanentSendError(f"header {name!r} is set by the e-mail builder")
            mime[name] = value
        mime.set_content(content.text, subtype="plain", charset="utf-8")
        mime.add_alternative(content.html, subtype="html", charset="utf-8")
        _add_attachments(mime, message.attachments)
    except (ValueError, TypeError) as exc:
        # header injection (CR/LF in a value) or an unusable address or content type
        raise PermanentSendError(f"cannot build the e-mail: {exc}") from exc
    _single_address(mime, "To", address_rejected=True)
    _single_address(mime, "From", address_rejected=False)
    # add_alternative/add_attachment give every part its own MIME-Version; only the
    # top level should carry it (RFC 2045 section 4)
    for part in mime.walk():
        if part is not mime:
            del part["MIME-Version"]
    return mime


def envelope(mime: EmailMessage) -> tuple[str, str]:
    """Return the SMTP envelope (sender, recipient) of a message made by ``build_mime``."""
    sender = cast(AddressHeader, mime["From"]).addresses[0].addr_spec
    recipient = cast(AddressHeader, mime["To"]).addresses[0].addr_spec
    return sender, recipient


def message_id(delivery_id: str, sender: str) -> str:
    """Return ``<delivery_id@domain>``, the domain taken from the sender's address."""
    return f"<{delivery_id}@{_sender_domain(sender)}>"


def _single_address(mime: EmailMessage, name: str, *, address_rejected: bool) -> None:
    header = cast(AddressHeader, mime[name])
    # The lenient parser salvages an address from text such as "a@b.example> NOTIFY=NEVER";
    # sending to what it salvaged would deliver somewhere nobody asked for.
    defects = [
        defect
        for defect in cast(BaseHeader, mime[name]).defects
        if not isinstance(defect, NonASCIILocalPartDefect)
    ]
    addresses = header.addresses
    if defects or len(addresses) != 1 or not addresses[0].domain:
        raise PermanentSendError(
            f"{name} {str(header)!r} is not a single e-mail address",
            code="invalid_address",
            address_rejected=address_rejected,
        )


@functools.lru_cache(maxsize=256)
def _sender_domain(sender: str) -> str:
    _, address = parseaddr(sender)
    _, at, domain = address.rpartition("@")
    if not at:
        return FALLBACK_DOMAIN
    try:
        domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return FALLBACK_DOMAIN
    return domain if _DOMAIN.fullmatch(domain) else FALLBACK_DOMAIN


def _add_attachments(mime: EmailMessage, attachments: tuple[Attachment, ...]) -> None:
    """Attach every file; a calendar invitation also becomes the last alternative body."""
    typed = [(attachment, _content_type(attachment)) for attachment in attachments]
    methods = [_calendar_method(attachment, header) for attachment, header in typed]
    if sum(method is not None for method in methods) > 1:
        raise ValueError("an e-mail can carry only one calendar invitation")
    # the alternative must be added while the body is still multipart/alternative
    for (attachment, header), method in zip(typed, methods, strict=True):
        if method is not None:
            _add_invitation(mime, attachment, header, method)
    for (attachment, header), method in zip(typed, methods, strict=True):
        if method is None:
            _attach(mime, attachment, header)
        else:
            _attach_invitation(mime, attachment)


def _content_type(attachment: Attachment) -> ContentTypeHeader:
    header = cast(
        ContentTypeHeader, default_policy.header_factory("content-type", attachment.content_type)
    )
    # an unparsable type silently becomes text/plain; refuse instead of mislabelling the file
    declared = attachment.content_type.partition(";")[0].strip().lower()
    if declared != f"{header.maintype}/{header.subtype}":
        raise ValueError(f"invalid attachment content type {attachment.content_type!r}")
    return header


def _calendar_method(attachment: Attachment, header: ContentTypeHeader) -> str | None:
    """Return the iTIP method of a calendar invitation, None for any other attachment.

    The method comes from the content type's ``method`` parameter or the calendar's
    METHOD property; RFC 6047 requires the two to agree. A text/calendar without a
    method is a plain calendar file, not an invitation, and stays an ordinary attachment.
    """
    if header.content_type != "text/calendar":
        return None
    declared = str(header.params.get("method", "")).strip().upper()
    text = _UNFOLD.sub("", attachment.content.decode("utf-8", errors="replace"))
    found = _METHOD_PROPERTY.search(text)
    stated = found.group(1).strip().upper() if found else ""
    if declared and stated and declared != stated:
        raise ValueError(
            f"the calendar says METHOD:{stated} but its content type says method={declared}"
        )
    method = declared or stated
    if not method:
        return None
    if not _ITIP_METHOD.fullmatch(method):
        raise ValueError(f"invalid calendar method {method!r}")
    return method


def _add_invitation(
    mime: EmailMessage, attachment: Attachment, header: ContentTypeHeader, method: str
) -> None:
    """Offer the calendar as the last alternative body, where mail clients (Outlook,
    Gmail, Apple Mail) look for an invitation (RFC 6047 section 2.4)."""
    charset = str(header.params.get("charset", "")) or "UTF-8"
    # base64 keeps the calendar's CRLF line ends and folding byte for byte
    mime.add_alternative(
        attachment.content,
        maintype="text",
        subtype="calendar",
        params={"method": method, "charset": charset},
    )


def _attach_invitation(mime: EmailMessage, attachment: Attachment) -> None:
    """Attach the invitation as a file too, for clients that ignore the inline part.

    application/ics rather than text/calendar, so that no client finds two invitations
    (the form Google Calendar and most senders use).
    """
    mime.add_attachment(
        attachment.content,
        maintype="application",
        subtype="ics",
        filename=attachment.filename,
        params={"name": attachment.filename},
    )


def _attach(mime: EmailMessage, attachment: Attachment, header: ContentTypeHeader) -> None:
    params = dict(header.params)
    # RFC 5545 text (ICS) is UTF-8; say so rather than let clients guess ASCII.
    if header.maintype == "text":
        params.setdefault("charset", "utf-8")
    mime.add_attachment(
        attachment.content,
        maintype=header.maintype,
        subtype=header.subtype,
        filename=attachment.filename,
        params=params,
    )
