"""An application context for commands that work on the database directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tidings.bootstrap import service_context
from tidings.channels.registry import ProviderRegistry
from tidings.config import Settings
from tidings.context import AppContext
from tidings.realtime.hub import MemoryHub


@asynccontextmanager
async def cli_context(settings: Settings) -> AsyncIterator[AppContext]:
    """No providers (commands deliver nothing) and no live fan-out of their own."""
    async with service_context(settings, providers=ProviderRegistry({}), hub=MemoryHub()) as ctx:
        yield ctx
