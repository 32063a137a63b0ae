"""One attempt of one claimed delivery: build the message, try the providers, judge.

Everything an attempt needs from the database is fetched for the whole batch first
(``Prefetched``), so attempts run concurrently without a session.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.base import (
    Attachment,
    EmailContent,
    OutboundMessage,
    PermanentSendError,
    Provider,
    PushSubscription,
    RetryableSendError,
    SendResult,
    WebhookEvent,
)
from tidings.context import AppContext
from tidings.delivery.repository import Claimed
from tidings.delivery.retry import backoff_seconds
from tidings.kit.metrics import DELIVERY_LATENCY
from tidings.models import Notification, WebhookEndpoint
from tidings.models import PushSubscription as PushSubscriptionRow
from tidings.models.opt_out import ALL_BUT_URGENT
from tidings.optout import repository as optout_repository
from tidings.optout.service import list_unsubscribe_headers
from tidings.push import repository as push_repository
from tidings.send import repository as send_repository
from tidings.tenant.service import DeliverySettings, delivery_settings
from tidings.webhook import repository as webhook_repository
from tidings.webhook.service import active_secrets

log = logging.getLogger(__name__)

_ERROR_TEXT = 1000
_STOPPED = 21610  # Twilio: the number replied STOP to this sender


@dataclass
class Prefetched:
    """Per-batch lookups: tenant settings, push subscriptions, webhook endpoints, SMS stops."""

    tenants: dict[str, DeliverySettings] = field(default_factory=dict)
    push: dict[str, PushSubscriptionRow] = field(default_factory=dict)
    webhooks: dict[str, WebhookEndpoint] = field(default_factory=dict)
    sms_stops: dict[str, set[str]] = field(default_factory=dict)  # number -> senders
    # e-mail: (tenant, recipient) -> opt-out scopes; (tenant, address) suppressed
    email_scopes: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    email_suppressed: set[tuple[str, str]] = field(default_factory=set)


async def prefetch(session: AsyncSession, claimed: list[Claimed]) -> Prefetched:
    found = Prefetched()
    for tenant in {c.delivery.tenant_id for c in claimed}:
        found.tenants[tenant] = await delivery_settings(session, tenant)
    targets: dict[str, list[str]] = {}
    for item in claimed:
        if item.delivery.target:
            targets.setdefault(item.delivery.channel, []).append(item.delivery.target)
    found.push = await push_repository.get_many(session, targets.get("push", []))
    found.webhooks = await webhook_repository.get_many(session, targets.get("webhook", []))
    if targets.get("sms"):
        found.sms_stops = await optout_repository.stopped_senders(session, targets["sms"])
    # an unsubscribe or a bounce after the send was accepted still counts: e-mail held
    # by send_at, quiet hours or a retry is checked again now
    mail: dict[str, list[Claimed]] = {}
    for item in claimed:
        if item.delivery.channel == "email":
            mail.setdefault(item.delivery.tenant_id, []).append(item)
    for tenant, items in mail.items():
        scopes = await optout_repository.email_scopes_of(
            session, tenant, [i.delivery.recipient_id for i in items]
        )
        found.email_scopes.update({(tenant, rid): s for rid, s in scopes.items()})
        bounced = await send_repository.suppressed_addresses(
            session, tenant, "email", [i.delivery.target or "" for i in items]
        )
        found.email_suppressed.update((tenant, address) for address in bounced)
    return found


@dataclass
class Outcome:
    """What an attempt decided, written by the batch if its claim still holds."""

    item: Claimed
    attempt: int
    values: dict[str, Any]
    suppress: tuple[str, str, str] | None = None  # (tenant, channel, address)
    hide_notification: str | None = None
    shown: Notification | None = None  # an in-app item that became visible now
    drop_push_subscription: str | None = None
    sms_stop: tuple[str, str] | None = None  # (sender, number)

    @property
    def delivery_id(self) -> str:
        return self.item.delivery.id


async def attempt(ctx: AppContext, item: Claimed, attempt: int, pre: Prefetched) -> Outcome:
    """Try the delivery once through its providers, in the tenant's order."""
    delivery, notification = item.delivery, item.notification
    now = ctx.clock.now()
    outcome = Outcome(item, attempt, {})
    if delivery.expires_at is not None and delivery.expires_at <= now:
        outcome.values = {"status": "suppressed", "reason": "expired"}
        if delivery.channel == "in_app":
            outcome.hide_notification = notification.id
        return outcome
    if delivery.channel == "in_app":
        # the inbox row is the delivery; it became visible at its send_at
        outcome.values = {"status": "delivered", "reason": None, "sent_at": now}
        if notification.visible and notification.archived_at is None:
            outcome.shown = notification
        return outcome
    tenant = pre.tenants.get(delivery.tenant_id, DeliverySettings())
    providers = ctx.providers.for_channel(delivery.channel, tenant.providers.get(delivery.channel))
    if not providers:
        outcome.values = {
            "status": "failed",
            "reason": "no_provider",
            "last_error": f"no provider is configured for {delivery.channel}",
        }
        return outcome
    message = _message(ctx, item, tenant, pre)
    if message is None:
        outcome.values = {"status": "suppressed", "reason": "no_address"}
        return outcome
    if delivery.channel == "email":
        blocked = _email_block(item, pre)
        if blocked is not None:
            outcome.values = {"status": "suppressed", "reason": blocked}
            return outcome
    if delivery.channel == "sms":
        stopped = pre.sms_stops.get(message.target, set())
        providers = [p for p in providers if _sender(p) not in stopped]
        if not providers:
            outcome.values = {"status": "suppressed", "reason": "opt_out"}
            return outcome
    return await _try_providers(ctx, outcome, providers, message, now)


async def _try_providers(
    ctx: AppContext,
    outcome: Outcome,
    providers: list[Provider],
    message: OutboundMessage,
    now: datetime,
) -> Outcome:
    delivery = outcome.item.delivery
    error: Exception | None = None
    for provider in providers:
        started = time.perf_counter()
        try:
            result: SendResult = await provider.send(message)
        except (RetryableSendError, PermanentSendError) as exc:
            error = exc
            if isinstance(exc, PermanentSendError):
                if exc.code == _STOPPED and _sender(provider):
                    outcome.sms_stop = (_sender(provider) or "", message.target)
                if exc.address_rejected:
                    break  # another provider would be refused the same address
            continue  # the next provider may not share this problem
        except Exception as exc:  # a provider bug must not lose the delivery
            log.exception("provider %s raised unexpectedly", provider.name)
            error = RetryableSendError(f"{type(exc).__name__}: {exc}")
            continue
        finally:
            DELIVERY_LATENCY.labels(delivery.channel, provider.name).observe(
                time.perf_counter() - started
            )
        outcome.values = {
            "status": "sent",
            "reason": None,
            "sent_at": ctx.clock.now(),
            "provider": result.provider,
            "provider_message_id": result.provider_message_id,
            "segments": result.segments,
            "last_error": None,
        }
        return outcome
    return _failure(ctx, outcome, error, now)


def _email_block(item: Claimed, pre: Prefetched) -> str | None:
    """Why an e-mail may no longer go out (opted out, or the address bounced)."""
    delivery, notification = item.delivery, item.notification
    scopes = pre.email_scopes.get((delivery.tenant_id, delivery.recipient_id), set())
    if notification.category in scopes:
        return "opt_out"  # a category's link covers its urgent e-mail too
    if ALL_BUT_URGENT in scopes and notification.priority != "urgent":
        return "opt_out"
    if (delivery.tenant_id, delivery.target or "") in pre.email_suppressed:
        return "invalid_address"
    return None


def _sender(provider: Provider) -> str | None:
    """The sender an SMS provider's opt-outs are keyed by (None for other providers)."""
    value = getattr(provider, "sender_key", None)
    return value if isinstance(value, str) else None


def _failure(ctx: AppContext, outcome: Outcome, error: Exception | None, now: datetime) -> Outcome:
    delivery = outcome.item.delivery
    text = (str(error) if error else "unknown error")[:_ERROR_TEXT]
    if isinstance(error, PermanentSendError):
        outcome.values = {"status": "failed", "reason": "rejected", "last_error": text}
        if outcome.sms_stop is not None:
            outcome.values["reason"] = "opt_out"
        elif error.code == "target_refused":
            outcome.values["reason"] = "target_refused"
        elif error.address_rejected and delivery.channel == "push":
            # the browser unsubscribed (404/410): the subscription is gone for good
            outcome.values["reason"] = "subscription_gone"
            outcome.drop_push_subscription = delivery.target
        elif error.address_rejected and delivery.target:
            outcome.values["reason"] = "invalid_address"
            outcome.suppress = (delivery.tenant_id, delivery.channel, delivery.target)
        return outcome
    settings = ctx.settings
    if outcome.attempt >= settings.delivery_max_attempts:
        outcome.values = {"status": "dead", "reason": "max_attempts", "last_error": text}
        return outcome
    retry_after = error.retry_after if isinstance(error, RetryableSendError) else None
    delay = backoff_seconds(
        outcome.attempt,
        base=settings.retry_base_seconds,
        cap=settings.retry_max_seconds,
        retry_after=retry_after,
    )
    outcome.values = {
        "status": "pending",
        "reason": "retry",
        "last_error": text,
        "not_before": now + timedelta(seconds=delay),
    }
    return outcome


def _message(
    ctx: AppContext, item: Claimed, tenant: DeliverySettings, pre: Prefetched
) -> OutboundMessage | None:
    """The rendered message for the delivery's provider; None when its target is gone."""
    delivery, notification = item.delivery, item.notification
    content = notification.content or {}
    email = content.get("email")
    sms = content.get("sms") or {}
    push = content.get("push") or {}
    target = delivery.target or ""
    subscription: PushSubscription | None = None
    webhook: WebhookEvent | None = None
    headers: dict[str, str] = {}
    if delivery.channel == "push":
        row = pre.push.get(target)
        if row is None or row.recipient_id != delivery.recipient_id:
            return None
        target = row.endpoint
        subscription = PushSubscription(endpoint=row.endpoint, p256dh=row.p256dh, auth=row.auth)
    elif delivery.channel == "webhook":
        endpoint = pre.webhooks.get(target)
        if endpoint is None or delivery.payload is None:
            return None
        target = endpoint.url
        event = delivery.payload
        webhook = WebhookEvent(
            id=event["id"],
            type=event["type"],
            created_at=event["created_at"],
            tenant=delivery.tenant_id,
            data=event["data"],
            secrets=active_secrets(endpoint, ctx.clock.now()),
        )
    elif delivery.channel == "email":
        headers = list_unsubscribe_headers(
            ctx,
            delivery.tenant_id,
            delivery.recipient_id,
            notification.category,
            notification.priority,
        )
    return OutboundMessage(
        delivery_id=delivery.id,
        tenant=delivery.tenant_id,
        channel=delivery.channel,
        target=target,
        category=notification.category,
        priority=notification.priority,
        title=push.get("title") or notification.title,
        body=push.get("body") or notification.body,
        url=push.get("url") or notification.action_url,
        email=EmailContent(
            subject=email.get("subject") or notification.title,
            text=email.get("text") or notification.body,
            html=email.get("html") or "",
        )
        if email
        else None,
        sms_text=sms.get("text") or notification.body,
        sender=tenant.email_from,
        reply_to=tenant.email_reply_to,
        headers=headers,
        attachments=tuple(
            Attachment(a["filename"], a["content_type"], base64.b64decode(a["content"]))
            for a in (email or {}).get("attachments", ())
        ),
        push=subscription,
        webhook=webhook,
        data={
            "notification_id": notification.id,
            "send_id": notification.send_id,
            "webhook": content.get("webhook"),
        },
    )
