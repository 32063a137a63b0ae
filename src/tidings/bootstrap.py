"""The one place where the service's parts are built and wired, for every kind of process
(API, worker, command): database, secrets, providers, HTTP client, live hub, runner."""

from __future__ import annotations

import functools
import importlib
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy.engine import make_url

from tidings.auth.tokens import TokenVerifier
from tidings.channels.outbound import GuardedTransport
from tidings.channels.registry import ProviderRegistry, build_registry
from tidings.config import Settings, stored_secret
from tidings.context import AppContext
from tidings.db import Database
from tidings.kit.clock import Clock, get_clock
from tidings.kit.cursor import CursorSigner
from tidings.kit.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tidings.migrate import ensure_schema, head_revision
from tidings.push.service import vapid_keys
from tidings.realtime.hub import MemoryHub, RedisHub

log = logging.getLogger(__name__)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The process's client TLS context (loading the CA bundle takes tens of ms)."""
    return httpx.create_ssl_context()


def prepare_for_fork(settings: Settings) -> None:
    """Do once, in a parent about to fork workers, what every child would otherwise repeat
    after the fork: import the database driver and the HTTP transport, load the CA bundle
    and read the migration scripts. Nothing here opens a connection or starts a thread, so
    all of it is safe to inherit."""
    make_url(settings.resolved_database_url).get_dialect().import_dbapi()
    importlib.import_module("httpcore")
    _tls_context()
    if not settings.is_sqlite:
        head_revision()


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
    outbound: httpx.AsyncClient | None = None
    limiter: RateLimiter | None = None
    live: MemoryHub | None = None
    try:
        await ensure_schema(db, settings)
        secret_key = stored_secret(settings, "secret_key", settings.secret_key)
        clock = clock or get_clock()
        vapid_private, vapid_public = await vapid_keys(db, settings, clock)
        # one pooled client for the addresses operators configure (JWKS, Twilio), and one
        # for the targets users register (webhooks, push), which checks every address
        timeout = httpx.Timeout(settings.webhook_timeout_seconds)
        tls = _tls_context()
        http = httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=tls)
        outbound = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            transport=GuardedTransport(allow_private=settings.allow_private_targets, verify=tls),
        )
        limiter = (
            RedisRateLimiter(settings.redis_url) if settings.redis_url else MemoryRateLimiter()
        )
        registry = providers or build_registry(
            settings,
            http=http,
            outbound_http=outbound,
            vapid_private_key=vapid_private,
            limiter=limiter,
        )
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
            clock=clock,
            vapid_public_key=vapid_public,
        )
    finally:
        if live is not None:
            await live.stop()
        if registry is not None and providers is None:
            await registry.aclose()
        if http is not None:
            await http.aclose()
        if outbound is not None:
            await outbound.aclose()
        if limiter is not None:
            await limiter.aclose()
        await db.dispose()
