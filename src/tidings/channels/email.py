"""The MIME form of an e-mail delivery, shared by the SMTP and the file provider."""

from __future__ import annotations

import re
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import AddressHeader, BaseHeader, ContentTypeHeader
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, parseaddr
from typing import cast

from tidings.channels.base import Attachment, OutboundMessage, PermanentSendError
from tidings.kit.clock import utcnow

FALLBACK_DOMAIN = "tidings.local"

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
    mime = EmailMessage(policy=default_policy)
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
        for attachment in message.attachments:
            _attach(mime, attachment)
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


def _attach(mime: EmailMessage, attachment: Attachment) -> None:
    header = cast(
        ContentTypeHeader, default_policy.header_factory("content-type", attachment.content_type)
    )
    # an unparsable type silently becomes text/plain; refuse instead of mislabelling the file
    declared = attachment.content_type.partition(";")[0].strip().lower()
    if declared != f"{header.maintype}/{header.subtype}":
        raise ValueError(f"invalid attachment content type {attachment.content_type!r}")
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
