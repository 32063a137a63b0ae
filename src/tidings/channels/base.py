"""The channel port: a provider takes a rendered message and sends it, or raises.

Channels are a leaf of the dependency graph: they never touch the database or the
service layer. The delivery engine turns their results and errors into delivery state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class EmailContent:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class PushSubscription:
    """A browser's ``PushSubscription.toJSON()``: where to POST and how to encrypt."""

    endpoint: str
    p256dh: str  # the browser's P-256 public key, base64url
    auth: str  # the 16-byte authentication secret, base64url


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event for one webhook endpoint; the body is ``{id, type, created_at, tenant, data}``.

    ``secrets`` are the endpoint's active signing secrets (one ``v1=`` each).
    """

    id: str
    type: str
    created_at: str
    tenant: str
    data: dict[str, Any]
    secrets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """Everything a provider needs for one delivery, already rendered."""

    delivery_id: str
    tenant: str
    channel: str
    target: str
    category: str
    priority: str
    title: str
    body: str
    url: str | None = None
    email: EmailContent | None = None
    sms_text: str | None = None
    sender: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    push: PushSubscription | None = None
    webhook: WebhookEvent | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class SendResult:
    provider: str
    provider_message_id: str | None = None
    segments: int | None = None  # SMS: how many segments the provider bills
    info: dict[str, Any] = field(default_factory=dict)


class SendError(Exception):
    """A provider could not send."""

    def __init__(self, message: str, *, code: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code


class RetryableSendError(SendError):
    """Try again later: timeouts, throttling, 4xx SMTP replies, 5xx HTTP answers."""

    def __init__(
        self, message: str, *, code: int | str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Retrying cannot help. ``address_rejected`` marks the target itself as bad."""

    def __init__(
        self, message: str, *, code: int | str | None = None, address_rejected: bool = False
    ) -> None:
        super().__init__(message, code=code)
        self.address_rejected = address_rejected


class TargetRefused(Exception):
    """An outbound URL resolves to an address Tidings may not connect to (see SPEC
    "Outbound targets"); providers report it as a permanent failure."""


@runtime_checkable
class Provider(Protocol):
    """One way to deliver a channel's messages (an SMTP server, a Twilio account...)."""

    name: str
    channel: str

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver ``message``; raise RetryableSendError or PermanentSendError on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections and other resources."""
        ...
