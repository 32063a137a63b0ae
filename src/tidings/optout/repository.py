"""E-mail and SMS opt-outs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import dialect_insert
from tidings.models import EmailOptOut, Recipient, SMSOptOut
from tidings.models.opt_out import ALL_BUT_URGENT


async def recipient_exists(session: AsyncSession, tenant_id: str, recipient_id: str) -> bool:
    found = await session.scalar(
        select(Recipient.id).where(Recipient.tenant_id == tenant_id, Recipient.id == recipient_id)
    )
    return found is not None


async def add_email(
    session: AsyncSession, tenant_id: str, recipient_id: str, scope: str, now: datetime
) -> None:
    stmt = dialect_insert(session, EmailOptOut).values(
        tenant_id=tenant_id, recipient_id=recipient_id, scope=scope, created_at=now
    )
    await session.execute(stmt.on_conflict_do_nothing())


async def email_opted_out(
    session: AsyncSession,
    tenant_id: str,
    recipient_ids: Sequence[str],
    *,
    category: str,
    urgent: bool,
) -> set[str]:
    """Which of ``recipient_ids`` opted out of e-mail of ``category`` (at this priority)."""
    if not recipient_ids:
        return set()
    scopes = [category] if urgent else [category, ALL_BUT_URGENT]
    rows = await session.scalars(
        select(EmailOptOut.recipient_id).where(
            EmailOptOut.tenant_id == tenant_id,
            EmailOptOut.recipient_id.in_(recipient_ids),
            EmailOptOut.scope.in_(scopes),
        )
    )
    return set(rows)


async def email_rows(session: AsyncSession, tenant_id: str, recipient_id: str) -> list[EmailOptOut]:
    rows = await session.scalars(
        select(EmailOptOut)
        .where(EmailOptOut.tenant_id == tenant_id, EmailOptOut.recipient_id == recipient_id)
        .order_by(EmailOptOut.created_at, EmailOptOut.scope)
    )
    return list(rows)


async def sms_rows(session: AsyncSession, number: str) -> list[SMSOptOut]:
    rows = await session.scalars(
        select(SMSOptOut).where(SMSOptOut.number == number).order_by(SMSOptOut.created_at)
    )
    return list(rows)


async def add_sms(session: AsyncSession, sender: str, number: str, now: datetime) -> None:
    stmt = dialect_insert(session, SMSOptOut).values(sender=sender, number=number, created_at=now)
    await session.execute(stmt.on_conflict_do_nothing())


async def remove_sms(session: AsyncSession, sender: str, number: str) -> None:
    await session.execute(
        delete(SMSOptOut).where(SMSOptOut.sender == sender, SMSOptOut.number == number)
    )


async def sms_opted_out(session: AsyncSession, senders: Sequence[str], number: str) -> set[str]:
    """Which of ``senders`` ``number`` has sent STOP to."""
    if not senders:
        return set()
    rows = await session.scalars(
        select(SMSOptOut.sender).where(
            SMSOptOut.number == number, or_(*(SMSOptOut.sender == s for s in senders))
        )
    )
    return set(rows)


async def stopped_senders(session: AsyncSession, numbers: Sequence[str]) -> dict[str, set[str]]:
    """Every sender each of ``numbers`` has sent STOP to (numbers with none are absent)."""
    found: dict[str, set[str]] = {}
    wanted = sorted(set(numbers))
    for start in range(0, len(wanted), 500):
        rows = await session.execute(
            select(SMSOptOut.number, SMSOptOut.sender).where(
                SMSOptOut.number.in_(wanted[start : start + 500])
            )
        )
        for number, sender in rows:
            found.setdefault(number, set()).add(sender)
    return found


async def email_scopes_of(
    session: AsyncSession, tenant_id: str, recipient_ids: Sequence[str]
) -> dict[str, set[str]]:
    """Each recipient's e-mail opt-out scopes (categories, or ``*``)."""
    found: dict[str, set[str]] = {}
    if not recipient_ids:
        return found
    rows = await session.execute(
        select(EmailOptOut.recipient_id, EmailOptOut.scope).where(
            EmailOptOut.tenant_id == tenant_id,
            EmailOptOut.recipient_id.in_(list(recipient_ids)),
        )
    )
    for recipient_id, scope in rows:
        found.setdefault(recipient_id, set()).add(scope)
    return found
