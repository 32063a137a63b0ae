"""Accepting sends: render per recipient and write notifications and the outbox at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.context import AppContext, Due
from tidings.errors import NotFound, Unprocessable
from tidings.kit.ids import uuid7
from tidings.kit.jobs import after_commit
from tidings.models import Send, Template
from tidings.notification import service as inbox
from tidings.optout import service as optout
from tidings.preference import rules
from tidings.preference import service as preference_service
from tidings.push import repository as push_repository
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
from tidings.webhook import service as webhooks

# channels whose target is a contact field of the recipient
_ADDRESS_FIELD = {"email": "email", "sms": "phone"}


@dataclass(frozen=True)
class SendOptions:
    """What internal senders (reminders, digests) add to a send.

    ``kind`` tells preferences what the message is: ``reminder`` bypasses quiet hours
    and digests, ``calendar`` (an invitation) is never folded into a digest, ``digest``
    is a digest itself. ``attachments`` go with the e-mail
    (``{"filename", "content_type", "content"}``, the content base64).
    """

    kind: str = "normal"
    attachments: tuple[dict[str, str], ...] = ()


@dataclass
class _Batch:
    """Rows of one accepted send, inserted together."""

    deliveries: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    due: list[Due] = field(default_factory=list)


async def accept(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    payload: SendCreate,
    *,
    header_key: str | None = None,
    loc: list[str | int] | None = None,
    options: SendOptions | None = None,
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
    accepted, due = await _create(
        session, ctx, principal.tenant, payload, key, now, loc, options or SendOptions()
    )
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
    if payload.topic is not None:
        after_commit(session, lambda: ctx.dispatcher.expand([accepted.id]))
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


@dataclass
class Plan:
    """Everything needed to create this send's notifications, for any set of recipients."""

    tenant_id: str
    send_id: str
    template_key: str | None
    template: dict[str, Any] | None  # a snapshot: later edits do not change the send
    category: str
    priority: str
    channels: list[str]
    data: dict[str, Any]
    literal: dict[str, Any] | None
    send_at: datetime | None
    expires_at: datetime | None
    loc: list[str | int]
    options: SendOptions = field(default_factory=SendOptions)


async def _plan(
    session: AsyncSession,
    ctx: AppContext,
    tenant_id: str,
    payload: SendCreate,
    now: datetime,
    loc: list[str | int],
    options: SendOptions,
) -> Plan:
    if payload.expires_at is not None and payload.expires_at <= now:
        raise Unprocessable("expires_at is in the past", loc=[*loc, "expires_at"])
    template: Template | None = None
    if payload.template is not None:
        try:
            template = await template_service.load(session, ctx, tenant_id, payload.template)
        except NotFound as exc:
            raise Unprocessable(exc.detail, loc=[*loc, "template"]) from None
    channels = list(payload.channels or (template.default_channels if template else ["in_app"]))
    if template is not None:
        lacking = [c for c in channels if c != "in_app" and not template.content.get(c)]
        if lacking:
            raise Unprocessable(
                f"template {template.key!r} has no content for: " + ", ".join(lacking),
                loc=[*loc, "channels"],
            )
    return Plan(
        tenant_id=tenant_id,
        send_id=uuid7(),
        template_key=payload.template,
        template=None
        if template is None
        else {"name": template.name, "content": template.content, "locales": template.locales},
        category=payload.category or (template.category if template else "general"),
        priority=payload.priority or (template.priority if template else "normal"),
        channels=channels,
        data=payload.data,
        literal=_literal_content(payload, channels) if template is None else None,
        send_at=payload.send_at if payload.send_at is not None and payload.send_at > now else None,
        expires_at=payload.expires_at,
        loc=loc,
        options=options,
    )


def plan_from_send(send: Send) -> Plan:
    """Rebuild the plan stored with a send (for topic expansion)."""
    stored = send.request
    return Plan(
        tenant_id=send.tenant_id,
        send_id=send.id,
        template_key=send.template,
        template=stored.get("template_snapshot"),
        category=send.category,
        priority=send.priority,
        channels=list(send.channels),
        data=stored.get("data") or {},
        literal=stored.get("literal"),
        send_at=send.send_at,
        expires_at=send.expires_at,
        loc=["body"],
    )


async def _create(
    session: AsyncSession,
    ctx: AppContext,
    tenant_id: str,
    payload: SendCreate,
    key: str | None,
    now: datetime,
    loc: list[str | int],
    options: SendOptions,
) -> tuple[SendAccepted, list[Due]]:
    plan = await _plan(session, ctx, tenant_id, payload, now, loc, options)
    request = payload.model_dump(mode="json", exclude={"recipients"})
    if payload.topic is not None:
        # expansion happens later: keep what rendering needs with the send
        request["template_snapshot"] = plan.template
        request["literal"] = plan.literal
    await repository.insert_send(
        session,
        {
            "id": plan.send_id,
            "tenant_id": tenant_id,
            "template": payload.template,
            "category": plan.category,
            "priority": plan.priority,
            "channels": plan.channels,
            "request": request,
            "idempotency_key": key,
            "created_at": now,
            "send_at": plan.send_at,
            "expires_at": plan.expires_at,
            "cancelled_at": None,
            "topic": payload.topic,
            "expanded_through": None,
            "expanded_at": None,
            "expansion_lease_until": None,
        },
    )
    refs, due = await materialize(session, ctx, plan, list(dict.fromkeys(payload.recipients)), now)
    status: SendStatus = "scheduled" if plan.send_at else "accepted"
    notifications = refs if payload.topic is None else None
    return SendAccepted(id=plan.send_id, status=status, notifications=notifications), due


async def materialize(
    session: AsyncSession,
    ctx: AppContext,
    plan: Plan,
    recipient_ids: list[str],
    now: datetime,
) -> tuple[list[NotificationRef], list[Due]]:
    """Create notifications and deliveries for ``recipient_ids``; returns refs and due ids."""
    tenant_id, channels = plan.tenant_id, plan.channels
    audience = await repository.audience(session, tenant_id, recipient_ids)
    recipients = audience.recipients
    await recipient_repository.create_empty(
        session, tenant_id, [r for r in recipient_ids if r not in recipients], now
    )
    targets = await _targets(session, plan, audience, recipient_ids, now)
    visible_at = plan.send_at or now
    batch = _Batch()
    refs: list[NotificationRef] = []
    for recipient_id in recipient_ids:
        recipient = recipients.get(recipient_id)
        notification_id = uuid7()
        meta = {
            "id": notification_id,
            "category": plan.category,
            "priority": plan.priority,
            "created_at": visible_at.isoformat(),
        }
        if plan.template is not None:
            values = template_service.variables(
                ctx,
                data=plan.data,
                tenant_id=tenant_id,
                recipient=_recipient_vars(recipient_id, recipient),
                notification=meta,
                unsubscribe_url=optout.unsubscribe_url(ctx, tenant_id, recipient_id, plan.category),
            )
            content = template_service.render(
                plan.template["content"],
                plan.template["locales"],
                values,
                channels=channels,
                locale=recipient.locale if recipient else None,
                timezone=recipient.timezone if recipient else None,
                loc=[*plan.loc, "data"],
            )
        else:
            assert plan.literal is not None
            content = plan.literal
        if plan.options.attachments and "email" in content:
            content = {**content, "email": {**content["email"]}}
            content["email"]["attachments"] = list(plan.options.attachments)
        title, body, action_url = _inbox_text(content, plan.template)
        notification = {
            "id": notification_id,
            "tenant_id": tenant_id,
            "send_id": plan.send_id,
            "recipient_id": recipient_id,
            "template": plan.template_key,
            "category": plan.category,
            "priority": plan.priority,
            "title": title,
            "body": body,
            "action_url": action_url,
            "data": plan.data,
            "content": {c: content[c] for c in channels if c != "in_app" and c in content},
            "visible": "in_app" in channels
            and not isinstance(targets.decisions.get((recipient_id, "in_app")), rules.Suppress),
            "created_at": visible_at,
            "read_at": None,
            "archived_at": None,
        }
        batch.notifications.append(notification)
        for channel in channels:
            _add_deliveries(
                batch,
                channel,
                targets,
                notification,
                webhook_content=content.get("webhook"),
                now=now,
                send_at=plan.send_at,
                expires_at=plan.expires_at,
            )
        refs.append(NotificationRef(id=notification_id, recipient_id=recipient_id))
    await repository.insert_rows(session, batch.notifications, batch.deliveries)
    visible = [n for n in batch.notifications if n["visible"] and n["created_at"] <= now]
    await inbox.announce(
        session,
        ctx,
        tenant_id,
        [(n["recipient_id"], inbox.item_json(n)) for n in visible],
        new=True,
    )
    return refs, batch.due


@dataclass
class _Targets:
    """Where each recipient's deliveries go, channel by channel."""

    addresses: dict[str, dict[str, str]] = field(default_factory=dict)  # channel -> rid -> addr
    blocked: dict[str, dict[str, str]] = field(default_factory=dict)  # channel -> rid -> reason
    push: dict[str, list[str]] = field(default_factory=dict)  # rid -> subscription ids
    webhooks: list[str] = field(default_factory=list)  # endpoint ids taking this category
    # what preferences say, where it is not "keep": (rid, channel) -> decision
    decisions: dict[tuple[str, str], rules.Decision] = field(default_factory=dict)


async def _targets(
    session: AsyncSession,
    plan: Plan,
    audience: repository.Audience,
    recipient_ids: list[str],
    now: datetime,
) -> _Targets:
    tenant_id, channels = plan.tenant_id, plan.channels
    recipients = audience.recipients
    found = _Targets()
    for channel, attribute in _ADDRESS_FIELD.items():
        if channel in channels:
            found.addresses[channel] = {
                rid: value
                for rid, r in recipients.items()
                if (value := getattr(r, attribute)) is not None
            }
    if "email" in channels:
        emails = found.addresses["email"]
        blocked = found.blocked.setdefault("email", {})
        invalid = await repository.suppressed_addresses(
            session, tenant_id, "email", emails.values()
        )
        blocked.update({rid: "invalid_address" for rid, a in emails.items() if a in invalid})
        opted_out = await optout.email_opted_out(
            session, tenant_id, list(emails), category=plan.category, priority=plan.priority
        )
        blocked.update(dict.fromkeys(opted_out, "opt_out"))
    if "push" in channels:
        found.push = await push_repository.for_recipients(session, tenant_id, recipient_ids)
    if "webhook" in channels:
        found.webhooks = await webhooks.endpoints_for(session, tenant_id, plan.category)
    if plan.options.kind != "digest":  # a digest was decided on when its items were
        _decide(plan, audience, recipient_ids, now, found)
    return found


def _decide(
    plan: Plan,
    audience: repository.Audience,
    recipient_ids: list[str],
    now: datetime,
    found: _Targets,
) -> None:
    """Apply preferences (switches, quiet hours, digests) to every recipient's channels."""
    recipients, docs = audience.recipients, audience.documents
    tenant_doc = preference_service.defaults_of(audience.tenant_settings)
    if not tenant_doc and not docs:
        return  # built-in defaults: every channel on, no quiet hours, no digest
    at = plan.send_at or now
    kind = plan.options.kind if plan.options.kind in rules.KINDS else "normal"
    for rid in recipient_ids:
        recipient = recipients.get(rid)
        for channel in plan.channels:
            decision = rules.decide(
                docs.get(rid),
                tenant_doc,
                channel=channel,
                category=plan.category,
                priority=plan.priority,
                now=at,
                recipient_zone=recipient.timezone if recipient else None,
                kind=kind,
            )
            if not isinstance(decision, rules.Keep):
                found.decisions[(rid, channel)] = decision


def _add_deliveries(
    batch: _Batch,
    channel: str,
    targets: _Targets,
    notification: dict[str, Any],
    *,
    webhook_content: Any,
    now: datetime,
    send_at: datetime | None,
    expires_at: datetime | None,
) -> None:
    """The notification's outbox rows for ``channel``: one per target."""
    recipient_id: str = notification["recipient_id"]
    row = {
        "tenant_id": notification["tenant_id"],
        "send_id": notification["send_id"],
        "notification_id": notification["id"],
        "recipient_id": recipient_id,
        "channel": channel,
        "not_before": send_at or now,
        "expires_at": expires_at,
        "attempts": 0,
        "last_error": None,
        "provider": None,
        "provider_message_id": None,
        "segments": None,
        "payload": None,
        "digest_key": None,
        "created_at": now,
        "updated_at": now,
        "sent_at": None,
    }
    decision = targets.decisions.get((recipient_id, channel))
    if isinstance(decision, rules.Suppress):
        address = targets.addresses.get(channel, {}).get(recipient_id)
        target = address if channel in _ADDRESS_FIELD else recipient_id
        _add(batch, row, target, "suppressed", now, reason=decision.reason)
        return
    if isinstance(decision, rules.Hold):
        row["not_before"] = max(decision.until, row["not_before"])
        row["hold"] = decision.reason
    elif isinstance(decision, rules.Digest):
        row["not_before"] = max(decision.due_at, row["not_before"])
        row["hold"] = decision.reason
        row["digest_key"] = decision.period_key
    if channel == "in_app":
        # the inbox row is the delivery, committed with it
        status = "scheduled" if send_at is not None else "delivered"
        _add(batch, row, recipient_id, status, now)
    elif channel in _ADDRESS_FIELD:
        address = targets.addresses[channel].get(recipient_id)
        blocked = targets.blocked.get(channel, {}).get(recipient_id)
        _add(batch, row, address, "suppressed" if blocked else None, now, reason=blocked)
    elif channel == "push":
        subscriptions: list[str | None] = list(targets.push.get(recipient_id, []))
        for subscription_id in subscriptions or [None]:
            _add(batch, row, subscription_id, None, now)
    elif channel == "webhook":
        item = inbox.item_json(notification)
        data = {**item, "recipient_id": recipient_id}
        if webhook_content:
            data["content"] = webhook_content
        event = webhooks.event("notification.created", data, now)
        endpoints: list[str | None] = list(targets.webhooks)
        for endpoint_id in endpoints or [None]:
            _add(batch, {**row, "payload": event}, endpoint_id, None, now)


def _add(
    batch: _Batch,
    row: dict[str, Any],
    target: str | None,
    status: str | None,
    now: datetime,
    *,
    reason: str | None = None,
) -> None:
    row = dict(row)
    # held by preferences (quiet hours, a digest) rather than by the send's send_at
    hold = row.pop("hold", None)
    if target is None and status != "suppressed":
        # no address, no browser subscribed, no endpoint: nowhere to deliver
        status, reason = "suppressed", "no_address"
    elif status is None:
        scheduled = row["not_before"] > now
        status, reason = ("scheduled", hold or "send_at") if scheduled else ("pending", None)
    elif status == "scheduled":
        reason = "send_at"
    if status != "scheduled":
        row["digest_key"] = None
    delivery_id = uuid7()
    batch.deliveries.append(
        {
            **row,
            "id": delivery_id,
            "target": target,
            "status": status,
            "reason": reason,
            "sent_at": now if status == "delivered" else None,
        }
    )
    if status == "pending":
        batch.due.append((delivery_id, row["channel"]))


def _recipient_vars(recipient_id: str, recipient: repository.Contact | None) -> dict[str, Any]:
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


def _literal_content(payload: SendCreate, channels: list[str]) -> dict[str, Any]:
    """Literal text is not rendered by Jinja; it is placed into the shape of each channel
    asked for (the in-app shape always: it gives the notification its inbox fields)."""
    title, body, url = payload.title or "", payload.body or "", payload.action_url
    shapes: dict[str, Callable[[], dict[str, Any]]] = {
        "in_app": lambda: {"title": title, "body": body, "action_url": url},
        "email": lambda: {"subject": title, "text": body, "html": literal_html(body, title=title)},
        "sms": lambda: {"text": body},
        "push": lambda: {"title": title, "body": body, "url": url},
        "webhook": lambda: {"title": title, "body": body, "url": url},
    }
    return {
        channel: shapes[channel]()
        for channel in dict.fromkeys(["in_app", *channels])
        if channel in shapes
    }


def _inbox_text(
    content: dict[str, Any], template: dict[str, Any] | None
) -> tuple[str, str, str | None]:
    in_app = content.get("in_app") or {}
    email = content.get("email") or {}
    push = content.get("push") or {}
    sms = content.get("sms") or {}
    title = (
        in_app.get("title")
        or email.get("subject")
        or push.get("title")
        or (template["name"] if template else "")
    )
    body = in_app.get("body") or email.get("text") or push.get("body") or sms.get("text") or ""
    return title, body, in_app.get("action_url") or push.get("url")


def _status(send: Send, counts: dict[str, dict[str, int]], now: datetime) -> SendStatus:
    if send.cancelled_at is not None:
        return "cancelled"
    if send.send_at is not None and send.send_at > now:
        return "scheduled"
    if send.topic is not None and send.expanded_at is None:
        return "processing"
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
