"""An application context for commands that work on the database directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tidings.auth.tokens import TokenVerifier
from tidings.channels.registry import ProviderRegistry
from tidings.config import Settings, stored_secret
from tidings.context import AppContext
from tidings.db import Database
from tidings.kit.cursor import CursorSigner
from tidings.migrate import ensure_schema
from tidings.realtime.hub import MemoryHub


@asynccontextmanager
async def cli_context(settings: Settings) -> AsyncIterator[AppContext]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    http = httpx.AsyncClient()
    try:
        await ensure_schema(db, settings)
        secret = stored_secret(settings, "secret_key", settings.secret_key)
        yield AppContext(
            settings=settings,
            db=db,
            cursors=CursorSigner(secret),
            verifier=TokenVerifier(settings, http=http),
            providers=ProviderRegistry({}),
            secret_key=secret,
            http=http,
            hub=MemoryHub(),
        )
    finally:
        await http.aclose()
        await db.dispose()
