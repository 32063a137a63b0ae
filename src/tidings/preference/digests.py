"""Digest e-mail: the low and normal e-mail a recipient chose to receive daily or weekly,
folded into one message per period.

Items wait as deliveries (status ``scheduled``, reason ``digest``, ``digest_key`` the
period). When a period is due, one transaction inserts the ``digests`` row for
(tenant, recipient, period), claims every waiting item of that period (they become
``sent``, reason ``digest``) and accepts the digest send. The row's primary key makes the
period's digest unique: a second scheduler, or a retry, finds it and does nothing, so no
digest is sent twice and no item goes into two. An item committed after its period's
digest was built moves to the next period instead of being dropped.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.kit.ids import uuid7
from tidings.kit.sql import dialect_insert
from tidings.models import Delivery, Digest, Notification, Recipient
from tidings.preference import repository, rules
from tidings.preference.schemas import DigestMode
from tidings.preference.service import tenant_defaults
from tidings.send import service as sends
from tidings.send.schemas import SendCreate

log = logging.getLogger(__name__)

BATCH = 100
_SENDER_SUB = "tidings-digests"


async def has_due(ctx: AppContext) -> bool:
    """Whether some period's digest is due (the worker sweeper asks before publishing)."""
    async with ctx.db.transaction(write=False) as session:
        found = await session.scalar(
            select(Delivery.id)
            .where(
                Delivery.status == "scheduled",
                Delivery.reason == "digest",
                Delivery.not_before <= ctx.clock.now(),
            )
            .limit(1)
        )
    return found is not None


async def build_due(ctx: AppContext, *, limit: int = BATCH) -> int:
    """Build every digest whose period is due; returns how many were sent."""
    now = ctx.clock.now()
    async with ctx.db.transaction(write=False) as session:
        due = (
            await session.execute(
                select(Delivery.tenant_id, Delivery.recipient_id, Delivery.digest_key)
                .where(
                    Delivery.status == "scheduled",
                    Delivery.reason == "digest",
                    Delivery.not_before <= now,
                )
                .distinct()
                .limit(limit)
            )
        ).all()
    built = 0
    for tenant_id, recipient_id, key in due:
        try:
            async with ctx.db.transaction() as session:
                built += await _build(session, ctx, tenant_id, recipient_id, key, now)
        except Exception:
            # the items stay waiting; the next sweep tries again
            log.exception("digest failed", extra={"tenant": tenant_id, "period": key})
    return built


async def _build(
    session: AsyncSession,
    ctx: AppContext,
    tenant_id: str,
    recipient_id: str,
    key: str | None,
    now: datetime,
) -> int:
    send_id = uuid7()
    claimed_period = await session.execute(
        dialect_insert(session, Digest)
        .values(
            tenant_id=tenant_id,
            recipient_id=recipient_id,
            period_key=key or "",
            send_id=send_id,
            items=0,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(Digest.period_key)
    )
    if claimed_period.first() is None:
        await _next_period(session, tenant_id, recipient_id, key, now)
        return 0
    waiting = _waiting(tenant_id, recipient_id, key)
    rows = (
        await session.execute(
            update(Delivery)
            .where(*waiting)
            .values(
                status="sent",
                reason="digest",
                provider="digest",
                provider_message_id=send_id,
                sent_at=now,
                updated_at=now,
            )
            .returning(Delivery.notification_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not rows:
        return 0
    notifications = (
        await session.scalars(
            select(Notification)
            .where(Notification.id.in_([r[0] for r in rows]))
            .order_by(Notification.created_at, Notification.id)
        )
    ).all()
    items = [_item(n) for n in notifications]
    mode = (key or "daily").split(":", 1)[0]
    payload = SendCreate.model_validate(
        {
            "recipients": [recipient_id],
            "template": "digest",
            "channels": ["email"],
            "data": {"items": items, "period": mode},
        }
    )
    accepted = await sends.accept(
        session,
        ctx,
        Principal(tenant_id, _SENDER_SUB, frozenset({"service"})),
        payload,
        options=sends.SendOptions(kind="digest"),
    )
    await session.execute(
        update(Digest)
        .where(
            Digest.tenant_id == tenant_id,
            Digest.recipient_id == recipient_id,
            Digest.period_key == (key or ""),
        )
        .values(send_id=accepted.id, items=len(items))
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.provider_message_id == send_id, Delivery.reason == "digest")
        .values(provider_message_id=accepted.id)
        .execution_options(synchronize_session=False)
    )
    return 1


def _waiting(tenant_id: str, recipient_id: str, key: str | None) -> list[Any]:
    return [
        Delivery.tenant_id == tenant_id,
        Delivery.recipient_id == recipient_id,
        Delivery.status == "scheduled",
        Delivery.reason == "digest",
        Delivery.digest_key.is_(None) if key is None else Delivery.digest_key == key,
    ]


async def _next_period(
    session: AsyncSession, tenant_id: str, recipient_id: str, key: str | None, now: datetime
) -> None:
    """Items that arrived after their period's digest was built wait for the next one."""
    mine = await repository.document(session, tenant_id, recipient_id)
    theirs = await tenant_defaults(session, tenant_id)
    values, _source = rules.effective(mine, theirs)
    digest = values["digest"]
    mode: DigestMode = "weekly" if (key or "").startswith("weekly") else "daily"
    if digest["mode"] in ("daily", "weekly"):
        mode = digest["mode"]
    zone = await session.scalar(
        select(Recipient.timezone).where(
            Recipient.tenant_id == tenant_id, Recipient.id == recipient_id
        )
    )
    next_key, due_at = rules.next_digest(
        now, mode, digest["hour"], digest["weekday"], zone if zone else None
    )
    await session.execute(
        update(Delivery)
        .where(*_waiting(tenant_id, recipient_id, key))
        .values(digest_key=next_key, not_before=due_at, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _item(notification: Notification) -> dict[str, Any]:
    email = (notification.content or {}).get("email") or {}
    return {
        "id": notification.id,
        "title": email.get("subject") or notification.title,
        "body": notification.body,
        "category": notification.category,
        "priority": notification.priority,
        "action_url": notification.action_url,
        "created_at": notification.created_at.isoformat(),
    }
