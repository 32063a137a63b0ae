"""Sends and the outbox rows written with them; every query is scoped by tenant."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.kit.sql import column_reader, fetch_rows, is_postgresql
from tidings.kit.sql import insert_rows as insert_table_rows
from tidings.models import (
    Delivery,
    Notification,
    PreferenceSet,
    Recipient,
    Send,
    Suppression,
)

# the tables a send writes (kit.sql.insert_rows hands their rows to the driver)
_SENDS_TABLE = cast(Table, Send.__table__)
_NOTIFICATIONS_TABLE = cast(Table, Notification.__table__)
_DELIVERIES_TABLE = cast(Table, Delivery.__table__)


@dataclass(frozen=True, slots=True)
class Contact:
    """What a send uses of a recipient (read as plain rows: thousands in a fan-out)."""

    id: str
    name: str | None
    email: str | None
    phone: str | None
    locale: str | None
    timezone: str | None
    data: dict[str, Any] | None


@dataclass
class Audience:
    """What a send needs to know of its tenant and recipients, read in one statement."""

    tenant_settings: dict[str, Any] = field(default_factory=dict)
    recipients: dict[str, Contact] = field(default_factory=dict)  # those that exist
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # their preferences


# the tenant's row, joined to the recipients asked for and their preference documents; run
# on the driver (fetch_rows), as SQLAlchemy's execution of it cost more than the statement.
# Every row carries the tenant's settings: as text, so that the driver does not parse the
# same document for each of a thousand recipients (only the first row's is read).
_AUDIENCE = " ".join(
    (
        "SELECT {settings}, p.document,",
        "r.id, r.name, r.email, r.phone, r.locale, r.timezone, r.data",
        "FROM tenants AS t",
        "LEFT JOIN recipients AS r ON r.tenant_id = t.id AND r.id {ids}",
        "LEFT JOIN preferences AS p ON p.tenant_id = r.tenant_id AND p.recipient_id = r.id",
        "WHERE t.id = {tenant}",
    )
)
_AUDIENCE_POSTGRESQL = _AUDIENCE.format(settings="t.settings::text", ids="= ANY(%s)", tenant="%s")
_SQLITE_IDS = 500  # recipients a statement
_AUDIENCE_SQLITE: dict[int, str] = {}
# JSON columns (document, data), as their types read them on each database
_JSON_COLUMNS = (
    cast(Table, PreferenceSet.__table__).c.document,
    cast(Table, Recipient.__table__).c.data,
)


async def audience(session: AsyncSession, tenant_id: str, recipient_ids: Sequence[str]) -> Audience:
    """The tenant's settings, the recipients of ``recipient_ids`` that exist, and the
    preference documents of those that have one."""
    found = Audience()
    ids = list(recipient_ids)
    if is_postgresql(session):
        statements = [(_AUDIENCE_POSTGRESQL, [ids, tenant_id])]
    else:
        statements = [
            (_audience_sqlite(len(chunk)), [*chunk, tenant_id])
            for chunk in (ids[i : i + _SQLITE_IDS] for i in range(0, len(ids), _SQLITE_IDS))
        ]
    read_document, read_data = [column_reader(session, column) for column in _JSON_COLUMNS]
    for statement, parameters in statements:
        rows = await fetch_rows(session, statement, parameters)
        if rows:  # every row carries the tenant's settings
            found.tenant_settings = dict(json.loads(rows[0][0]) or {})
        for _settings, document, rid, name, email, phone, locale, zone, data in rows:
            if rid is not None:
                found.recipients[rid] = Contact(
                    rid, name, email, phone, locale, zone, read_data(data)
                )
                if document is not None:
                    found.documents[rid] = dict(read_document(document))
    return found


def _audience_sqlite(size: int) -> str:
    statement = _AUDIENCE_SQLITE.get(size)
    if statement is None:
        marks = ", ".join("?" for _ in range(size))
        statement = _AUDIENCE_SQLITE[size] = _AUDIENCE.format(
            settings="t.settings", ids=f"IN ({marks})", tenant="?"
        )
    return statement


async def insert_send(session: AsyncSession, send: dict[str, Any]) -> None:
    await insert_table_rows(session, _SENDS_TABLE, [send])


async def insert_rows(
    session: AsyncSession, notifications: list[dict[str, Any]], deliveries: list[dict[str, Any]]
) -> None:
    """Write notifications and their deliveries (the outbox)."""
    await insert_table_rows(session, _NOTIFICATIONS_TABLE, notifications)
    await insert_table_rows(session, _DELIVERIES_TABLE, deliveries)


async def suppressed_addresses(
    session: AsyncSession, tenant_id: str, channel: str, addresses: Iterable[str]
) -> set[str]:
    wanted = list({a for a in addresses if a})
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        rows = await session.scalars(
            select(Suppression.address).where(
                Suppression.tenant_id == tenant_id,
                Suppression.channel == channel,
                Suppression.address.in_(wanted[start : start + 500]),
            )
        )
        found.update(rows)
    return found


async def get(session: AsyncSession, tenant_id: str, send_id: str) -> Send | None:
    return await session.scalar(select(Send).where(Send.tenant_id == tenant_id, Send.id == send_id))


async def delivery_counts(
    session: AsyncSession, tenant_id: str, send_id: str
) -> dict[str, dict[str, int]]:
    rows = await session.execute(
        select(Delivery.channel, Delivery.status, func.count())
        .where(Delivery.tenant_id == tenant_id, Delivery.send_id == send_id)
        .group_by(Delivery.channel, Delivery.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for channel, status, n in rows:
        counts.setdefault(channel, {})[status] = n
    return counts


async def cancel(session: AsyncSession, tenant_id: str, send_id: str, now: datetime) -> None:
    await session.execute(
        update(Delivery)
        .where(
            Delivery.tenant_id == tenant_id,
            Delivery.send_id == send_id,
            Delivery.status.in_(("pending", "scheduled")),
        )
        .values(status="cancelled", reason="cancelled", updated_at=now)
    )
    # items not yet visible never appear; visible ones stay in the inbox
    await session.execute(
        update(Notification)
        .where(
            Notification.tenant_id == tenant_id,
            Notification.send_id == send_id,
            Notification.created_at > now,
        )
        .values(visible=False)
    )
    await session.execute(
        update(Send)
        .where(Send.tenant_id == tenant_id, Send.id == send_id, Send.cancelled_at.is_(None))
        .values(cancelled_at=now)
    )
