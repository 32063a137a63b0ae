"""Recipients: contact data per host-platform user id, per tenant."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.delivery import repository as delivery_repository
from tidings.errors import NotFound
from tidings.kit.cursor import filter_scope
from tidings.kit.paging import decode_position, next_cursor
from tidings.notification import repository as notification_repository
from tidings.optout import repository as optout_repository
from tidings.push import repository as push_repository
from tidings.recipient import repository
from tidings.recipient.schemas import (
    ExportedDelivery,
    ExportedNotification,
    ExportedOptOut,
    ExportedPushSubscription,
    ExportedTopic,
    RecipientExport,
    RecipientPage,
    RecipientRead,
    RecipientUpsert,
)
from tidings.tenant.service import ensure_tenant
from tidings.topic import repository as topic_repository


async def upsert(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    recipient_id: str,
    payload: RecipientUpsert,
) -> tuple[RecipientRead, bool]:
    """Create or merge a recipient; returns it and whether it was created."""
    await ensure_tenant(session, ctx, principal.tenant)
    now = ctx.clock.now()
    changes = payload.model_dump(exclude_unset=True)
    # insert-or-nothing first: a concurrent PUT or send creating the same id cannot collide
    created = await repository.create_if_missing(session, principal.tenant, recipient_id, now)
    recipient = await repository.get(session, principal.tenant, recipient_id, for_update=True)
    if recipient is None:  # erased between the two statements
        raise NotFound(f"recipient {recipient_id!r} was erased meanwhile")
    repository.apply(recipient, changes)
    recipient.updated_at = now
    await session.flush()
    return RecipientRead.model_validate(recipient), created


async def get(session: AsyncSession, principal: Principal, recipient_id: str) -> RecipientRead:
    recipient = await repository.get(session, principal.tenant, recipient_id)
    if recipient is None:
        raise NotFound(f"recipient {recipient_id!r} does not exist")
    return RecipientRead.model_validate(recipient)


async def list_page(
    session: AsyncSession, ctx: AppContext, principal: Principal, *, limit: int, cursor: str | None
) -> RecipientPage:
    scope = filter_scope("recipients", tenant=principal.tenant)
    after = decode_position(ctx.cursors, cursor, scope)
    rows = await repository.list_page(session, principal.tenant, after=after, limit=limit + 1)
    items, token = next_cursor(ctx.cursors, rows, limit, scope, lambda r: (r.created_at, r.id))
    return RecipientPage(items=[RecipientRead.model_validate(r) for r in items], next_cursor=token)


async def erase(session: AsyncSession, principal: Principal, recipient_id: str) -> None:
    """Remove the recipient with its personal data and inbox (rows cascade)."""
    if not await repository.delete_one(session, principal.tenant, recipient_id):
        raise NotFound(f"recipient {recipient_id!r} does not exist")


async def export(session: AsyncSession, principal: Principal, recipient_id: str) -> RecipientExport:
    """Everything stored about a recipient: contact data, topics, inbox, deliveries,
    browsers and opt-outs."""
    recipient = await repository.get(session, principal.tenant, recipient_id)
    if recipient is None:
        raise NotFound(f"recipient {recipient_id!r} does not exist")
    tenant = principal.tenant
    topics = await topic_repository.all_for_recipient(session, tenant, recipient_id)
    notifications = await notification_repository.all_for_recipient(session, tenant, recipient_id)
    deliveries = await delivery_repository.all_for_recipient(session, tenant, recipient_id)
    subscriptions = await push_repository.all_for_recipient(session, tenant, recipient_id)
    opt_outs = [
        ExportedOptOut(channel="email", scope=row.scope, created_at=row.created_at)
        for row in await optout_repository.email_rows(session, tenant, recipient_id)
    ]
    if recipient.phone:
        opt_outs += [
            ExportedOptOut(channel="sms", scope=row.sender, created_at=row.created_at)
            for row in await optout_repository.sms_rows(session, recipient.phone)
        ]
    return RecipientExport(
        recipient=RecipientRead.model_validate(recipient),
        topics=[ExportedTopic.model_validate(t) for t in topics],
        notifications=[ExportedNotification.model_validate(n) for n in notifications],
        deliveries=[ExportedDelivery.model_validate(d) for d in deliveries],
        push_subscriptions=[ExportedPushSubscription.model_validate(s) for s in subscriptions],
        opt_outs=opt_outs,
    )
