"""Webhook endpoints and the events Tidings posts to them.

Each event becomes one delivery per matching endpoint (channel ``webhook``, target the
endpoint id), so endpoints fail, retry and recover independently. The event itself
(id, type, created_at, data) is fixed in the delivery row when it is created: every
retry carries the same body, and receivers can deduplicate on the id.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.channels.outbound import validate_target_url
from tidings.context import AppContext, Due
from tidings.delivery import repository as delivery_repository
from tidings.errors import Conflict, NotFound, Unprocessable
from tidings.kit.cursor import filter_scope
from tidings.kit.ids import uuid7
from tidings.kit.paging import decode_position, next_cursor
from tidings.models import Delivery, WebhookEndpoint
from tidings.tenant.service import ensure_tenant
from tidings.webhook import repository
from tidings.webhook.schemas import (
    RotatedSecret,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointPage,
    WebhookEndpointRead,
)

MAX_ENDPOINTS = 20
ROTATION_OVERLAP = timedelta(hours=24)
OUTCOME_EVENTS = frozenset({"sent", "delivered", "failed", "dead"})


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _check_url(ctx: AppContext, url: str) -> None:
    try:
        validate_target_url(url, allow_private=ctx.settings.allow_private_targets)
    except ValueError as exc:
        raise Unprocessable(str(exc), loc=["body", "url"]) from None


async def create(
    session: AsyncSession, ctx: AppContext, principal: Principal, payload: WebhookEndpointCreate
) -> WebhookEndpointCreated:
    """Register an endpoint; its secret is returned this once."""
    _check_url(ctx, payload.url)
    await ensure_tenant(session, ctx, principal.tenant)
    if await repository.count(session, principal.tenant) >= MAX_ENDPOINTS:
        raise Conflict(f"a tenant has at most {MAX_ENDPOINTS} webhook endpoints")
    now = ctx.clock.now()
    secret = payload.secret or _new_secret()
    endpoint = await repository.add(
        session,
        {
            "id": uuid7(),
            "tenant_id": principal.tenant,
            "url": payload.url,
            "categories": sorted(set(payload.categories)) if payload.categories else None,
            "secrets": [{"secret": secret, "expires_at": None}],
            "created_at": now,
            "updated_at": now,
        },
    )
    read = WebhookEndpointRead.model_validate(endpoint)
    return WebhookEndpointCreated(**read.model_dump(), secret=secret)


async def list_page(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
) -> WebhookEndpointPage:
    scope = filter_scope("webhook-endpoints", tenant=principal.tenant)
    after = decode_position(ctx.cursors, cursor, scope)
    rows = await repository.page(session, principal.tenant, after=after, limit=limit + 1)
    items, token = next_cursor(ctx.cursors, rows, limit, scope, lambda e: (e.created_at, e.id))
    return WebhookEndpointPage(
        items=[WebhookEndpointRead.model_validate(e) for e in items], next_cursor=token
    )


async def get(session: AsyncSession, principal: Principal, endpoint_id: str) -> WebhookEndpointRead:
    endpoint = await repository.get(session, principal.tenant, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id!r} does not exist")
    return WebhookEndpointRead.model_validate(endpoint)


async def remove(
    session: AsyncSession, ctx: AppContext, principal: Principal, endpoint_id: str
) -> None:
    """Delete an endpoint; events it has not received yet are cancelled."""
    if not await repository.remove(session, principal.tenant, endpoint_id):
        raise NotFound(f"webhook endpoint {endpoint_id!r} does not exist")
    await delivery_repository.cancel_for_target(
        session, principal.tenant, "webhook", endpoint_id, ctx.clock.now()
    )


async def rotate(
    session: AsyncSession, ctx: AppContext, principal: Principal, endpoint_id: str
) -> RotatedSecret:
    """A new secret signs from now on; the previous one keeps signing for 24 hours."""
    endpoint = await repository.get(session, principal.tenant, endpoint_id, for_update=True)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id!r} does not exist")
    now = ctx.clock.now()
    expires = now + ROTATION_OVERLAP
    secret = _new_secret()
    kept = [
        {"secret": s["secret"], "expires_at": s["expires_at"] or expires.isoformat()}
        for s in endpoint.secrets
        if s["expires_at"] is None or datetime.fromisoformat(s["expires_at"]) > now
    ]
    endpoint.secrets = [{"secret": secret, "expires_at": None}, *kept][:5]
    endpoint.updated_at = now
    await session.flush()
    return RotatedSecret(id=endpoint.id, secret=secret, previous_secret_expires_at=expires)


def active_secrets(endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    """The secrets that sign an event sent now, newest first."""
    return tuple(
        s["secret"]
        for s in endpoint.secrets
        if s["expires_at"] is None or datetime.fromisoformat(s["expires_at"]) > now
    )


def matches(categories: list[str] | None, category: str) -> bool:
    return categories is None or category in categories


def event(event_type: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An event as stored with its deliveries (the tenant is added when it is sent)."""
    return {"id": uuid7(), "type": event_type, "created_at": now.isoformat(), "data": data}


async def endpoints_for(session: AsyncSession, tenant_id: str, category: str) -> list[str]:
    """Ids of the tenant's endpoints that take events of ``category``."""
    found = await repository.targets(session, [tenant_id])
    return [eid for eid, categories in found.get(tenant_id, []) if matches(categories, category)]


def outcome_data(delivery: Delivery, **override: Any) -> dict[str, Any]:
    """The ``data`` of a ``delivery.*`` event (``override`` replaces fields that the
    row object does not hold yet)."""
    data = {
        "delivery_id": delivery.id,
        "send_id": delivery.send_id,
        "notification_id": delivery.notification_id,
        "recipient_id": delivery.recipient_id,
        "channel": delivery.channel,
        "status": delivery.status,
        "reason": delivery.reason,
        "attempts": delivery.attempts,
        "provider": delivery.provider,
        "provider_message_id": delivery.provider_message_id,
        "last_error": delivery.last_error,
    }
    data.update(override)
    return data


@dataclass(frozen=True)
class OutcomeEvent:
    """A delivery that reached a final or notable state (``delivery.<status>``)."""

    tenant_id: str
    category: str
    send_id: str
    notification_id: str
    recipient_id: str
    status: str
    data: dict[str, Any]


async def emit_outcomes(
    session: AsyncSession, ctx: AppContext, outcomes: Sequence[OutcomeEvent]
) -> list[Due]:
    """Queue ``delivery.*`` events for the endpoints that take them; returns what is due."""
    wanted = [o for o in outcomes if o.status in OUTCOME_EVENTS]
    if not wanted:
        return []
    endpoints = await repository.targets(session, {o.tenant_id for o in wanted})
    if not endpoints:
        return []
    now = ctx.clock.now()
    rows: list[dict[str, Any]] = []
    for outcome in wanted:
        matching = [
            eid
            for eid, categories in endpoints.get(outcome.tenant_id, [])
            if matches(categories, outcome.category)
        ]
        if not matching:
            continue
        payload = event(f"delivery.{outcome.status}", outcome.data, now)
        rows.extend(
            delivery_row(
                outcome.tenant_id,
                endpoint_id,
                payload,
                send_id=outcome.send_id,
                notification_id=outcome.notification_id,
                recipient_id=outcome.recipient_id,
                now=now,
            )
            for endpoint_id in matching
        )
    await repository.insert_deliveries(session, rows)
    return [(row["id"], "webhook") for row in rows]


def delivery_row(
    tenant_id: str,
    endpoint_id: str,
    payload: dict[str, Any],
    *,
    send_id: str,
    notification_id: str,
    recipient_id: str,
    now: datetime,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    """An outbox row carrying one event to one endpoint."""
    return {
        "id": uuid7(),
        "tenant_id": tenant_id,
        "send_id": send_id,
        "notification_id": notification_id,
        "recipient_id": recipient_id,
        "channel": "webhook",
        "target": endpoint_id,
        "status": "scheduled" if send_at is not None else "pending",
        "reason": "send_at" if send_at is not None else None,
        "not_before": send_at or now,
        "expires_at": expires_at,
        "attempts": 0,
        "last_error": None,
        "provider": None,
        "provider_message_id": None,
        "segments": None,
        "payload": payload,
        "digest_key": None,
        "created_at": now,
        "updated_at": now,
        "sent_at": None,
    }
