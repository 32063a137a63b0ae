"""Accepting sends: render per recipient and write notifications and the outbox at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.errors import NotFound, Unprocessable
from tidings.kit.ids import uuid7
from tidings.kit.jobs import after_commit
from tidings.models import Recipient, Send, Template
from tidings.recipient import repository as recipient_repository
from tidings.send import idempotency, repository
from tidings.send.schemas import (
    BulkSendAccepted,
    BulkSendCreate,
    NotificationRef,
    SendAccepted,
    SendCreate,
    SendRead,
    SendStatus,
)
from tidings.template import service as template_service
from tidings.template.rendering import literal_html
from tidings.tenant.service import ensure_tenant

# channels whose target is a contact field of the recipient
_ADDRESS_FIELD = {"email": "email", "sms": "phone"}


@dataclass
class _Batch:
    """Rows of one accepted send, inserted together."""

    deliveries: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    due: list[str] = field(default_factory=list)


async def accept(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    payload: SendCreate,
    *,
    header_key: str | None = None,
    loc: list[str | int] | None = None,
) -> SendAccepted:
    """Store a send durably (idempotently); its deliveries are handed over after commit."""
    loc = loc or ["body"]
    key = idempotency.resolve_key(payload.idempotency_key, header_key, loc)
    await ensure_tenant(session, ctx, principal.tenant)
    now = ctx.clock.now()
    if key is not None:
        request_hash = idempotency.fingerprint(payload.fingerprint_body())
        replay = await idempotency.begin(
            session, tenant_id=principal.tenant, key=key, request_hash=request_hash, now=now
        )
        if replay is not None:
            return SendAccepted.model_validate(replay)
    accepted, due = await _create(session, ctx, principal.tenant, payload, key, now, loc)
    if key is not None:
        await idempotency.finish(
            session,
            tenant_id=principal.tenant,
            key=key,
            status_code=202,
            response=accepted.model_dump(mode="json"),
        )
    if due:
        after_commit(session, lambda: ctx.dispatcher.dispatch(due))
    return accepted


async def accept_bulk(
    session: AsyncSession, ctx: AppContext, principal: Principal, payload: BulkSendCreate
) -> BulkSendAccepted:
    """All items or none: any failing item rolls the whole request back."""
    items = [
        await accept(session, ctx, principal, item, loc=["body", "items", index])
        for index, item in enumerate(payload.items)
    ]
    return BulkSendAccepted(items=items)


async def _create(
    session: AsyncSession,
    ctx: AppContext,
    tenant_id: str,
    payload: SendCreate,
    key: str | None,
    now: datetime,
    loc: list[str | int],
) -> tuple[SendAccepted, list[str]]:
    if payload.expires_at is not None and payload.expires_at <= now:
        raise Unprocessable("expires_at is in the past", loc=[*loc, "expires_at"])
    send_at = payload.send_at if payload.send_at is not None and payload.send_at > now else None

    template: Template | None = None
    if payload.template is not None:
        try:
            template = await template_service.load(session, ctx, tenant_id, payload.template)
        except NotFound as exc:
            raise Unprocessable(exc.detail, loc=[*loc, "template"]) from None
    category = payload.category or (template.category if template else "general")
    priority = payload.priority or (template.priority if template else "normal")
    channels = list(payload.channels or (template.default_channels if template else ["in_app"]))
    if template is not None:
        lacking = [c for c in channels if c != "in_app" and not template.content.get(c)]
        if lacking:
            raise Unprocessable(
                f"template {template.key!r} has no content for: " + ", ".join(lacking),
                loc=[*loc, "channels"],
            )

    recipient_ids = list(dict.fromkeys(payload.recipients))
    recipients = await recipient_repository.get_many(session, tenant_id, recipient_ids)
    await recipient_repository.create_empty(
        session, tenant_id, [r for r in recipient_ids if r not in recipients], now
    )
    suppressed: set[str] = set()
    if "email" in channels:
        emails = [r.email for r in recipients.values() if r.email]
        suppressed = await repository.suppressed_addresses(session, tenant_id, "email", emails)

    send_id = uuid7()
    visible_at = send_at or now
    literal = _literal_content(payload) if template is None else None
    batch = _Batch()
    refs: list[NotificationRef] = []
    for recipient_id in recipient_ids:
        recipient = recipients.get(recipient_id)
        notification_id = uuid7()
        meta = {
            "id": notification_id,
            "category": category,
            "priority": priority,
            "created_at": visible_at.isoformat(),
        }
        if template is not None:
            values = template_service.variables(
                ctx,
                data=payload.data,
                tenant_id=tenant_id,
                recipient=_recipient_vars(recipient_id, recipient),
                notification=meta,
            )
            content = template_service.render(
                template.content,
                template.locales,
                values,
                channels=channels,
                locale=recipient.locale if recipient else None,
                timezone=recipient.timezone if recipient else None,
                loc=[*loc, "data"],
            )
        else:
            assert literal is not None
            content = literal
        title, body, action_url = _inbox_text(content, template)
        batch.notifications.append(
            {
                "id": notification_id,
                "tenant_id": tenant_id,
                "send_id": send_id,
                "recipient_id": recipient_id,
                "template": payload.template,
                "category": category,
                "priority": priority,
                "title": title,
                "body": body,
                "action_url": action_url,
                "data": payload.data,
                "content": {c: content[c] for c in channels if c != "in_app" and c in content},
                "visible": True,
                "created_at": visible_at,
                "read_at": None,
                "archived_at": None,
            }
        )
        for channel in channels:
            _add_delivery(
                batch,
                channel,
                recipient,
                suppressed,
                send_id=send_id,
                notification_id=notification_id,
                recipient_id=recipient_id,
                tenant_id=tenant_id,
                now=now,
                send_at=send_at,
                expires_at=payload.expires_at,
            )
        refs.append(NotificationRef(id=notification_id, recipient_id=recipient_id))

    send_row = {
        "id": send_id,
        "tenant_id": tenant_id,
        "template": payload.template,
        "category": category,
        "priority": priority,
        "channels": channels,
        "request": payload.model_dump(mode="json", exclude={"recipients", "data"}),
        "idempotency_key": key,
        "created_at": now,
        "send_at": send_at,
        "expires_at": payload.expires_at,
        "cancelled_at": None,
    }
    await repository.insert_outbox(session, send_row, batch.notifications, batch.deliveries)
    status: SendStatus = "scheduled" if send_at else "accepted"
    return SendAccepted(id=send_id, status=status, notifications=refs), batch.due


def _add_delivery(
    batch: _Batch,
    channel: str,
    recipient: Recipient | None,
    suppressed: set[str],
    *,
    send_id: str,
    notification_id: str,
    recipient_id: str,
    tenant_id: str,
    now: datetime,
    send_at: datetime | None,
    expires_at: datetime | None,
) -> None:
    target: str | None = recipient_id if channel == "in_app" else None
    status, reason = "pending", None
    if channel in _ADDRESS_FIELD:
        target = getattr(recipient, _ADDRESS_FIELD[channel]) if recipient else None
    if channel != "in_app" and target is None:
        # push subscriptions and webhook endpoints are targets of their own; with none
        # registered there is nowhere to deliver
        status, reason = "suppressed", "no_address"
    elif channel == "email" and target in suppressed:
        status, reason = "suppressed", "invalid_address"
    elif send_at is not None:
        status, reason = "scheduled", "send_at"
    elif channel == "in_app":
        status = "delivered"  # the inbox row is the delivery, committed with it
    delivery_id = uuid7()
    batch.deliveries.append(
        {
            "id": delivery_id,
            "tenant_id": tenant_id,
            "send_id": send_id,
            "notification_id": notification_id,
            "recipient_id": recipient_id,
            "channel": channel,
            "target": target,
            "status": status,
            "reason": reason,
            "not_before": send_at or now,
            "expires_at": expires_at,
            "attempts": 0,
            "last_error": None,
            "provider": None,
            "provider_message_id": None,
            "created_at": now,
            "updated_at": now,
            "sent_at": now if status == "delivered" else None,
        }
    )
    if status == "pending":
        batch.due.append(delivery_id)


def _recipient_vars(recipient_id: str, recipient: Recipient | None) -> dict[str, Any]:
    if recipient is None:
        return {
            "id": recipient_id,
            "name": None,
            "email": None,
            "phone": None,
            "locale": None,
            "timezone": None,
            "data": {},
        }
    return {
        "id": recipient.id,
        "name": recipient.name,
        "email": recipient.email,
        "phone": recipient.phone,
        "locale": recipient.locale,
        "timezone": recipient.timezone,
        "data": recipient.data or {},
    }


def _literal_content(payload: SendCreate) -> dict[str, Any]:
    """Literal text is not rendered by Jinja; it is placed into each channel's shape."""
    title, body, url = payload.title or "", payload.body or "", payload.action_url
    return {
        "in_app": {"title": title, "body": body, "action_url": url},
        "email": {"subject": title, "text": body, "html": literal_html(body, title=title)},
        "sms": {"text": body},
        "push": {"title": title, "body": body, "url": url},
        "webhook": {"title": title, "body": body, "url": url},
    }


def _inbox_text(content: dict[str, Any], template: Template | None) -> tuple[str, str, str | None]:
    in_app = content.get("in_app") or {}
    email = content.get("email") or {}
    push = content.get("push") or {}
    sms = content.get("sms") or {}
    title = (
        in_app.get("title")
        or email.get("subject")
        or push.get("title")
        or (template.name if template else "")
    )
    body = in_app.get("body") or email.get("text") or push.get("body") or sms.get("text") or ""
    return title, body, in_app.get("action_url") or push.get("url")


def _status(send: Send, counts: dict[str, dict[str, int]], now: datetime) -> SendStatus:
    if send.cancelled_at is not None:
        return "cancelled"
    if send.send_at is not None and send.send_at > now:
        return "scheduled"
    active = sum(
        n
        for per in counts.values()
        for s, n in per.items()
        if s in ("pending", "scheduled", "sending")
    )
    return "processing" if active else "completed"


async def read(
    session: AsyncSession, ctx: AppContext, principal: Principal, send_id: str
) -> SendRead:
    send = await repository.get(session, principal.tenant, send_id)
    if send is None:
        raise NotFound(f"send {send_id!r} does not exist")
    counts = await repository.delivery_counts(session, principal.tenant, send_id)
    return SendRead(
        id=send.id,
        status=_status(send, counts, ctx.clock.now()),
        created_at=send.created_at,
        send_at=send.send_at,
        expires_at=send.expires_at,
        counts=counts,
    )


async def cancel(
    session: AsyncSession, ctx: AppContext, principal: Principal, send_id: str
) -> SendRead:
    """Cancel every delivery that has not started; repeating it is harmless."""
    send = await repository.get(session, principal.tenant, send_id)
    if send is None:
        raise NotFound(f"send {send_id!r} does not exist")
    await repository.cancel(session, principal.tenant, send_id, ctx.clock.now())
    await session.refresh(send)
    return await read(session, ctx, principal, send_id)
