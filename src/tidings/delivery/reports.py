"""Delivery reports from providers (Twilio's status callbacks).

A report names the provider's message id. The delivery learns that id only when its
attempt is recorded, after the provider answered; a fast report can arrive first. Such
a report is kept (``provider_reports``) and applied when the attempt is recorded, so
no report is lost to the race.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.context import AppContext, Due
from tidings.kit.sql import dialect_insert
from tidings.models import Delivery, Notification, ProviderReport
from tidings.optout import service as optout
from tidings.webhook import service as webhooks

DELIVERED = "delivered"
FAILED = frozenset({"failed", "undelivered"})
STOPPED = "21610"  # Twilio: the number replied STOP to this sender
# only rows that recorded the message: a row being sent again (an operator's retry)
# is another message, whatever a late report about the previous one says
_FROM = {
    "delivered": ("sent",),
    "failed": ("sent", "delivered"),  # the carrier has the last word
}


async def receive(
    session: AsyncSession,
    ctx: AppContext,
    *,
    channel: str,
    provider_message_id: str,
    state: str,
    error_code: str | None,
    sender: str | None,
    providers: Sequence[str] | None = None,
) -> list[Due]:
    """Apply a report to its delivery, or keep it until the delivery names the message.

    ``providers`` limits the report to deliveries those providers sent (the ones of the
    account that signed it). Returns the ``delivery.*`` webhook deliveries now due.
    """
    if state != DELIVERED and state not in FAILED:
        return []  # queued, sending, sent: nothing the delivery does not know
    query = select(Delivery.id).where(
        Delivery.provider_message_id == provider_message_id, Delivery.channel == channel
    )
    if providers is not None:
        query = query.where(Delivery.provider.in_(list(providers)))
    delivery_id = await session.scalar(query.limit(1))
    if delivery_id is None:
        await _keep(session, ctx, provider_message_id, state, error_code, sender)
        return []
    return await _apply(session, ctx, [(delivery_id, state, error_code, sender)])


async def apply_kept(
    session: AsyncSession, ctx: AppContext, sent: Sequence[tuple[str, str]]
) -> list[Due]:
    """Apply reports that arrived before these ``(delivery id, provider message id)``."""
    if not sent:
        return []
    by_message = {message_id: delivery_id for delivery_id, message_id in sent}
    kept = list(
        await session.scalars(
            select(ProviderReport).where(ProviderReport.provider_message_id.in_(by_message))
        )
    )
    if not kept:
        return []
    await session.execute(
        delete(ProviderReport).where(
            ProviderReport.provider_message_id.in_([r.provider_message_id for r in kept])
        )
    )
    return await _apply(
        session,
        ctx,
        [(by_message[r.provider_message_id], r.state, r.error_code, r.sender) for r in kept],
    )


async def _keep(
    session: AsyncSession,
    ctx: AppContext,
    provider_message_id: str,
    state: str,
    error_code: str | None,
    sender: str | None,
) -> None:
    values: dict[str, Any] = {
        "provider_message_id": provider_message_id,
        "state": state,
        "error_code": error_code,
        "sender": sender,
        "received_at": ctx.clock.now(),
    }
    stmt = dialect_insert(session, ProviderReport).values(**values)
    if state in FAILED:  # a failure outranks an earlier "delivered"
        stmt = stmt.on_conflict_do_update(index_elements=["provider_message_id"], set_=values)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["provider_message_id"])
    await session.execute(stmt)


async def _apply(
    session: AsyncSession,
    ctx: AppContext,
    reports: Sequence[tuple[str, str, str | None, str | None]],
) -> list[Due]:
    now = ctx.clock.now()
    events: list[webhooks.OutcomeEvent] = []
    for delivery_id, state, error_code, sender in reports:
        kind = DELIVERED if state == DELIVERED else "failed"
        values: dict[str, Any] = {"status": kind, "reason": None, "updated_at": now}
        if kind == "failed":
            values["reason"] = "opt_out" if error_code == STOPPED else "undelivered"
            values["last_error"] = f"the provider reports {state}" + (
                f" (error {error_code})" if error_code else ""
            )
        row = (
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status.in_(_FROM[kind]))
                .values(**values)
                .returning(Delivery)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
        if row is None:
            continue  # already final (failed, dead, cancelled...): the report changes nothing
        if error_code == STOPPED and sender and row.target:
            await optout.record_sms_opt_out(session, ctx, sender, row.target)
        category = await session.scalar(
            select(Notification.category).where(Notification.id == row.notification_id)
        )
        events.append(
            webhooks.OutcomeEvent(
                tenant_id=row.tenant_id,
                category=category or "general",
                send_id=row.send_id,
                notification_id=row.notification_id,
                recipient_id=row.recipient_id,
                status=row.status,
                data=webhooks.outcome_data(row),
            )
        )
    return await webhooks.emit_outcomes(session, ctx, events)
