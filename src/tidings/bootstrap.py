"""The one place where the service's parts are built and wired, for every kind of process
(API, worker, command): database, secrets, providers, HTTP client, live hub, runner."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tidings.auth.tokens import TokenVerifier
from tidings.channels.registry import ProviderRegistry, build_registry
from tidings.config import Settings, stored_secret
from tidings.context import AppContext
from tidings.db import Database
from tidings.kit.clock import Clock, get_clock
from tidings.kit.cursor import CursorSigner
from tidings.migrate import ensure_schema
from tidings.realtime.hub import MemoryHub, RedisHub

log = logging.getLogger(__name__)


@asynccontextmanager
async def service_context(
    settings: Settings,
    *,
    clock: Clock | None = None,
    providers: ProviderRegistry | None = None,
    hub: MemoryHub | None = None,
) -> AsyncIterator[AppContext]:
    """Build an AppContext (migrating SQLite, checking PostgreSQL) and close it afterwards."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    registry: ProviderRegistry | None = None
    http: httpx.AsyncClient | None = None
    live: MemoryHub | None = None
    try:
        await ensure_schema(db, settings)
        secret_key = stored_secret(settings, "secret_key", settings.secret_key)
        registry = providers or build_registry(settings)
        # one client for all outbound HTTP (JWKS, webhooks, push, SMS), with its pool
        http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
        live = hub or (RedisHub(settings.redis_url) if settings.redis_url else MemoryHub())
        await live.start()
        yield AppContext(
            settings=settings,
            db=db,
            cursors=CursorSigner(secret_key),
            verifier=TokenVerifier(settings, http=http),
            providers=registry,
            secret_key=secret_key,
            http=http,
            hub=live,
            clock=clock or get_clock(),
        )
    finally:
        if live is not None:
            await live.stop()
        if registry is not None and providers is None:
            await registry.aclose()
        if http is not None:
            await http.aclose()
        await db.dispose()
