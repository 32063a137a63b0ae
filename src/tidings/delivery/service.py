"""Running deliveries: claim by id, send through the channel's providers, record the outcome.

The embedded runner and the Celery workers both call ``process`` with ids only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.delivery import reports, repository
from tidings.delivery.attempt import Outcome, attempt, prefetch
from tidings.delivery.repository import Claimed, DeliveryFilter
from tidings.delivery.schemas import DeliveryPage, DeliveryRead
from tidings.errors import Conflict, NotFound
from tidings.kit.cursor import filter_scope
from tidings.kit.jobs import after_commit
from tidings.kit.metrics import DELIVERIES
from tidings.kit.paging import decode_position, next_cursor
from tidings.models import Notification
from tidings.notification import service as inbox
from tidings.optout import service as optout
from tidings.push import repository as push_repository
from tidings.webhook import service as webhooks

log = logging.getLogger(__name__)

MAX_BATCH = 100


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
        pre = await prefetch(session, claimed)
    semaphore = _send_slots(ctx)

    async def run(item: Claimed) -> Outcome:
        async with semaphore:
            return await attempt(ctx, item, won[item.delivery.id], pre)

    outcomes = await asyncio.gather(*(run(item) for item in claimed))
    async with ctx.db.transaction() as session:
        shown: list[Notification] = []
        events: list[webhooks.OutcomeEvent] = []
        reported: list[tuple[str, str]] = []  # (delivery, provider message) of sent SMS
        for outcome in await _record(session, ctx, outcomes, ctx.clock.now()):
            if outcome.shown is not None:
                shown.append(outcome.shown)
            event = _outcome_event(outcome)
            if event is not None:
                events.append(event)
            message_id = outcome.values.get("provider_message_id")
            if outcome.item.delivery.channel == "sms" and message_id:
                reported.append((outcome.delivery_id, message_id))
        for tenant in {n.tenant_id for n in shown}:
            await inbox.announce(
                session,
                ctx,
                tenant,
                [
                    (n.recipient_id, inbox.item(n).model_dump(mode="json"))
                    for n in shown
                    if n.tenant_id == tenant
                ],
            )
        due = await webhooks.emit_outcomes(session, ctx, events)
        # outcome events first: a kept report is newer than the send it reports on
        due += await reports.apply_kept(session, ctx, reported)
        if due:
            after_commit(session, lambda: ctx.dispatcher.dispatch(due))
    return len(won)


def _send_slots(ctx: AppContext) -> asyncio.Semaphore:
    """The sends a process runs at once, shared by all its batches: more in flight only
    wait in the HTTP pools (TIDINGS_RUNNER_CONCURRENCY)."""
    if ctx.send_slots is None:
        ctx.send_slots = asyncio.Semaphore(ctx.settings.runner_concurrency)
    return ctx.send_slots


async def _record(
    session: AsyncSession, ctx: AppContext, outcomes: Sequence[Outcome], now: datetime
) -> list[Outcome]:
    """Write the outcomes whose claims still hold, with their side effects; returns those."""
    for outcome in outcomes:
        outcome.values["updated_at"] = now
    written = await repository.record_many(
        session, [(o.delivery_id, o.attempt, o.values) for o in outcomes]
    )
    kept: list[Outcome] = []
    for outcome in outcomes:
        delivery = outcome.item.delivery
        if delivery.id not in written:
            log.warning(
                "delivery outcome dropped: claim was taken over",
                extra={"delivery_id": delivery.id},
            )
            continue
        kept.append(outcome)
        DELIVERIES.labels(delivery.channel, outcome.values["status"]).inc()
        if outcome.suppress is not None:
            tenant, channel, address = outcome.suppress
            await repository.suppress_address(
                session, tenant, channel, address, "invalid_address", now
            )
        if outcome.hide_notification is not None:
            await session.execute(
                update(Notification)
                .where(Notification.id == outcome.hide_notification)
                .values(visible=False)
                .execution_options(synchronize_session=False)
            )
            await inbox.recount(
                session, ctx, delivery.tenant_id, [outcome.item.notification.recipient_id]
            )
        if outcome.drop_push_subscription is not None:
            await push_repository.delete_ids(
                session, delivery.tenant_id, [outcome.drop_push_subscription]
            )
        if outcome.sms_stop is not None:
            sender, number = outcome.sms_stop
            await optout.record_sms_opt_out(session, ctx, sender, number)
    return kept


def _outcome_event(outcome: Outcome) -> webhooks.OutcomeEvent | None:
    """The ``delivery.*`` event of an outcome, for the tenant's webhook endpoints.

    In-app items announce themselves as ``notification.created``, and a webhook
    delivery's own outcome is not echoed to webhooks.
    """
    delivery = outcome.item.delivery
    status = outcome.values["status"]
    if delivery.channel in ("in_app", "webhook") or status not in webhooks.OUTCOME_EVENTS:
        return None
    data = webhooks.outcome_data(
        delivery,
        status=status,
        reason=outcome.values.get("reason"),
        attempts=outcome.attempt,
        provider=outcome.values.get("provider"),
        provider_message_id=outcome.values.get("provider_message_id"),
        last_error=outcome.values.get("last_error"),
    )
    return webhooks.OutcomeEvent(
        tenant_id=delivery.tenant_id,
        category=outcome.item.notification.category,
        send_id=delivery.send_id,
        notification_id=delivery.notification_id,
        recipient_id=delivery.recipient_id,
        status=status,
        data=data,
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
