"""Browser push: the VAPID key pair and each user's subscriptions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.channels.outbound import validate_target_url
from tidings.channels.webpush import generate_vapid_private_key, vapid_public_key
from tidings.config import ConfigError, Settings
from tidings.context import AppContext
from tidings.db import Database
from tidings.errors import NotFound, Unprocessable
from tidings.kit.clock import Clock
from tidings.kit.cursor import filter_scope
from tidings.kit.ids import uuid7
from tidings.kit.paging import decode_position, next_cursor
from tidings.push import repository
from tidings.push.schemas import PushSubscriptionCreate, PushSubscriptionPage, PushSubscriptionRead
from tidings.recipient import repository as recipient_repository
from tidings.tenant.service import ensure_tenant

VAPID_KEY_NAME = "vapid_private_key"
# a user rarely has more browsers than this; older subscriptions make way for new ones
MAX_SUBSCRIPTIONS_PER_USER = 20


async def vapid_keys(db: Database, settings: Settings, clock: Clock) -> tuple[str, str]:
    """The (private, public) VAPID keys: configured, or generated once and stored in the
    database so that every process (API and workers) signs with the same pair."""
    if settings.vapid_private_key and settings.vapid_public_key:
        private = settings.vapid_private_key.get_secret_value()
        try:
            derived = vapid_public_key(private)
        except ValueError as exc:
            raise ConfigError(f"TIDINGS_VAPID_PRIVATE_KEY: {exc}") from None
        if derived != settings.vapid_public_key.rstrip("="):
            # browsers would subscribe with the public key and every push be refused
            raise ConfigError(
                "TIDINGS_VAPID_PUBLIC_KEY does not belong to TIDINGS_VAPID_PRIVATE_KEY"
            )
        return private, derived
    async with db.transaction() as session:
        stored = await repository.service_key(session, VAPID_KEY_NAME)
        if stored is None:
            await repository.store_service_key(
                session, VAPID_KEY_NAME, generate_vapid_private_key(), clock.now()
            )
            stored = await repository.service_key(session, VAPID_KEY_NAME)
    assert stored is not None
    return stored, vapid_public_key(stored)


async def subscribe(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    payload: PushSubscriptionCreate,
    *,
    user_agent: str | None,
) -> tuple[PushSubscriptionRead, bool]:
    """Register the caller's browser (again); (subscription, created)."""
    try:
        validate_target_url(payload.endpoint, allow_private=ctx.settings.allow_private_targets)
    except ValueError as exc:
        raise Unprocessable(str(exc), loc=["body", "endpoint"]) from None
    now = ctx.clock.now()
    await ensure_tenant(session, ctx, principal.tenant)
    await recipient_repository.create_empty(session, principal.tenant, [principal.sub], now)
    owner = await repository.owner_of(session, principal.tenant, payload.endpoint)
    if owner is not None and owner[1] != principal.sub:
        # another user signed in on this browser: their subscription ends here, and
        # what was on its way to them must not reach the new user
        await repository.delete_ids(session, principal.tenant, [owner[0]])
    row, created = await repository.upsert(
        session,
        {
            "id": uuid7(),
            "tenant_id": principal.tenant,
            "recipient_id": principal.sub,
            "endpoint": payload.endpoint,
            "p256dh": payload.keys.p256dh,
            "auth": payload.keys.auth,
            "user_agent": (user_agent or "")[:512] or None,
            "created_at": now,
        },
    )
    stale = await repository.ids_beyond(
        session, principal.tenant, principal.sub, MAX_SUBSCRIPTIONS_PER_USER
    )
    await repository.delete_ids(session, principal.tenant, stale)
    return PushSubscriptionRead.model_validate(row), created


async def unsubscribe(session: AsyncSession, principal: Principal, endpoint: str) -> None:
    if not await repository.delete_endpoint(session, principal.tenant, principal.sub, endpoint):
        raise NotFound("you have no push subscription with this endpoint")


async def list_page(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
) -> PushSubscriptionPage:
    scope = filter_scope("push-subscriptions", tenant=principal.tenant, sub=principal.sub)
    after = decode_position(ctx.cursors, cursor, scope)
    rows = await repository.page(
        session, principal.tenant, principal.sub, after=after, limit=limit + 1
    )
    items, token = next_cursor(ctx.cursors, rows, limit, scope, lambda s: (s.created_at, s.id))
    return PushSubscriptionPage(
        items=[PushSubscriptionRead.model_validate(s) for s in items], next_cursor=token
    )
