"""Running deliveries: claim by id, send through the channel's providers, record the outcome.

The embedded runner and the Celery workers both call ``process`` with ids only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.channels.base import (
    EmailContent,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendResult,
)
from tidings.context import AppContext
from tidings.delivery import repository
from tidings.delivery.repository import Claimed, DeliveryFilter
from tidings.delivery.retry import backoff_seconds
from tidings.delivery.schemas import DeliveryPage, DeliveryRead
from tidings.errors import Conflict, NotFound
from tidings.kit.cursor import filter_scope
from tidings.kit.jobs import after_commit
from tidings.kit.metrics import DELIVERIES, DELIVERY_LATENCY
from tidings.kit.paging import decode_position, next_cursor
from tidings.models import Notification
from tidings.notification import service as inbox
from tidings.tenant.service import email_identity

log = logging.getLogger(__name__)

MAX_BATCH = 100
_ERROR_TEXT = 1000


@dataclass
class Outcome:
    delivery_id: str
    attempt: int
    values: dict[str, Any]
    suppress: tuple[str, str, str] | None = None  # (tenant, channel, address)
    hide_notification: str | None = None
    shown: Notification | None = None  # an in-app item that became visible now
    meta: dict[str, Any] = field(default_factory=dict)


async def process(ctx: AppContext, ids: Sequence[str]) -> int:
    """Deliver the due rows among ``ids``; returns how many this call claimed."""
    ids = list(dict.fromkeys(ids))
    claimed_total = 0
    for start in range(0, len(ids), MAX_BATCH):
        claimed_total += await _process_batch(ctx, ids[start : start + MAX_BATCH])
    return claimed_total


async def _process_batch(ctx: AppContext, ids: list[str]) -> int:
    now = ctx.clock.now()
    lease = timedelta(seconds=ctx.settings.claim_lease_seconds)
    async with ctx.db.transaction() as session:
        won = dict(await repository.claim(session, ids, now, lease))
        if not won:
            return 0
        claimed = await repository.load_claimed(session, list(won))
        identities = {
            tenant: await email_identity(session, tenant)
            for tenant in {c.delivery.tenant_id for c in claimed if c.delivery.channel == "email"}
        }
    semaphore = asyncio.Semaphore(ctx.settings.runner_concurrency)

    async def attempt(item: Claimed) -> Outcome:
        async with semaphore:
            return await _attempt(ctx, item, won[item.delivery.id], identities)

    outcomes = await asyncio.gather(*(attempt(item) for item in claimed))
    async with ctx.db.transaction() as session:
        shown: list[Notification] = []
        for outcome in outcomes:
            if await _record(session, outcome, ctx.clock.now()) and outcome.shown is not None:
                shown.append(outcome.shown)
        for tenant in {n.tenant_id for n in shown}:
            await inbox.announce(
                session,
                ctx,
                tenant,
                [(n.recipient_id, inbox.item(n)) for n in shown if n.tenant_id == tenant],
            )
    return len(won)


async def _record(session: AsyncSession, outcome: Outcome, now: datetime) -> bool:
    """Write the outcome if our claim still holds; False when it was taken over."""
    outcome.values["updated_at"] = now
    if not await repository.record(session, outcome.delivery_id, outcome.attempt, outcome.values):
        log.warning(
            "delivery outcome dropped: claim was taken over",
            extra={"delivery_id": outcome.delivery_id},
        )
        return False
    DELIVERIES.labels(outcome.meta.get("channel", "?"), outcome.values["status"]).inc()
    if outcome.suppress is not None:
        tenant, channel, address = outcome.suppress
        await repository.suppress_address(session, tenant, channel, address, "invalid_address", now)
    if outcome.hide_notification is not None:
        await session.execute(
            update(Notification)
            .where(Notification.id == outcome.hide_notification)
            .values(visible=False)
            .execution_options(synchronize_session=False)
        )
    return True


async def _attempt(
    ctx: AppContext,
    item: Claimed,
    attempt: int,
    identities: dict[str, tuple[str | None, str | None]],
) -> Outcome:
    delivery, notification = item.delivery, item.notification
    now = ctx.clock.now()
    outcome = Outcome(delivery.id, attempt, {}, meta={"channel": delivery.channel})
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
    providers = ctx.providers.for_channel(delivery.channel)
    if not providers:
        outcome.values = {
            "status": "failed",
            "reason": "no_provider",
            "last_error": f"no provider is configured for {delivery.channel}",
        }
        return outcome
    message = _message(ctx, item, identities.get(delivery.tenant_id, (None, None)))
    error: Exception | None = None
    for provider in providers:
        started = time.perf_counter()
        try:
            result: SendResult = await provider.send(message)
        except (RetryableSendError, PermanentSendError) as exc:
            error = exc
            if isinstance(exc, PermanentSendError) and exc.address_rejected:
                break  # another provider would be refused the same address
            continue
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
            "last_error": None,
        }
        return outcome
    return _failure(
        ctx, outcome, delivery.target, delivery.tenant_id, delivery.channel, error, attempt, now
    )


def _failure(
    ctx: AppContext,
    outcome: Outcome,
    target: str | None,
    tenant_id: str,
    channel: str,
    error: Exception | None,
    attempt: int,
    now: datetime,
) -> Outcome:
    text = (str(error) if error else "unknown error")[:_ERROR_TEXT]
    if isinstance(error, PermanentSendError):
        outcome.values = {"status": "failed", "reason": "rejected", "last_error": text}
        if error.address_rejected and target:
            outcome.values["reason"] = "invalid_address"
            outcome.suppress = (tenant_id, channel, target)
        return outcome
    settings = ctx.settings
    if attempt >= settings.delivery_max_attempts:
        outcome.values = {"status": "dead", "reason": "max_attempts", "last_error": text}
        return outcome
    retry_after = error.retry_after if isinstance(error, RetryableSendError) else None
    delay = backoff_seconds(
        attempt,
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
    ctx: AppContext, item: Claimed, identity: tuple[str | None, str | None]
) -> OutboundMessage:
    delivery, notification = item.delivery, item.notification
    content = notification.content or {}
    email = content.get("email")
    sms = content.get("sms") or {}
    push = content.get("push") or {}
    return OutboundMessage(
        delivery_id=delivery.id,
        tenant=delivery.tenant_id,
        channel=delivery.channel,
        target=delivery.target or "",
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
        sender=identity[0],
        reply_to=identity[1],
        data={
            "notification_id": notification.id,
            "send_id": notification.send_id,
            "webhook": content.get("webhook"),
        },
    )


async def list_page(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    f: DeliveryFilter,
    *,
    limit: int,
    cursor: str | None,
) -> DeliveryPage:
    scope = filter_scope("deliveries", tenant=principal.tenant, **vars(f))
    after = decode_position(ctx.cursors, cursor, scope)
    rows = await repository.page(session, principal.tenant, f, after=after, limit=limit + 1)
    items, token = next_cursor(ctx.cursors, rows, limit, scope, lambda d: (d.created_at, d.id))
    return DeliveryPage(items=[DeliveryRead.model_validate(d) for d in items], next_cursor=token)


async def retry(
    session: AsyncSession, ctx: AppContext, principal: Principal, delivery_id: str
) -> DeliveryRead:
    """Give a dead or failed delivery a fresh set of attempts."""
    delivery = await repository.get(session, principal.tenant, delivery_id)
    if delivery is None:
        raise NotFound(f"delivery {delivery_id!r} does not exist")
    if delivery.status not in ("dead", "failed"):
        raise Conflict(
            f"only dead or failed deliveries can be retried (this one is {delivery.status})"
        )
    await repository.requeue(session, delivery, ctx.clock.now())
    await session.refresh(delivery)
    channel = delivery.channel
    after_commit(session, lambda: ctx.dispatcher.dispatch([(delivery_id, channel)]))
    return DeliveryRead.model_validate(delivery)


async def due(ctx: AppContext, *, limit: int = 500) -> list[str]:
    """Ids the sweeper should hand over (uncarried, due, or with an expired claim)."""
    async with ctx.db.transaction(write=False) as session:
        return await repository.due_ids(
            session, ctx.clock.now(), limit=limit, pending_grace=timedelta(seconds=2)
        )


async def due_for_workers(ctx: AppContext, *, limit: int = 1000) -> list[tuple[str, str]]:
    """What the worker sweeper re-publishes: like ``due`` but with channels, and with a
    grace as long as a claim's lease, since rows may simply be waiting in a busy queue."""
    grace = timedelta(seconds=ctx.settings.claim_lease_seconds)
    async with ctx.db.transaction(write=False) as session:
        return await repository.due_with_channels(
            session, ctx.clock.now(), limit=limit, pending_grace=grace
        )


async def hold_lease(ctx: AppContext, name: str, holder: str, ttl: float) -> bool:
    async with ctx.db.transaction() as session:
        return await repository.acquire_lease(
            session, name, holder, ctx.clock.now(), timedelta(seconds=ttl)
        )
