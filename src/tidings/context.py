"""What the running service is made of, built once in the lifespan (or a worker)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import httpx

from tidings.config import Settings
from tidings.db import Database
from tidings.kit.clock import Clock, get_clock
from tidings.kit.cursor import CursorSigner

if TYPE_CHECKING:
    from tidings.auth.tokens import TokenVerifier
    from tidings.channels.registry import ProviderRegistry
    from tidings.realtime.hub import MemoryHub


Due = tuple[str, str]
"""A delivery to carry: (delivery id, channel)."""


class Dispatcher(Protocol):
    """Carries "look at these delivery ids" to whatever runs deliveries."""

    def dispatch(self, deliveries: list[Due]) -> None:
        """Deliveries (id, channel) that are due now; called after their commit."""
        ...

    def expand(self, send_ids: list[str]) -> None:
        """Topic sends to expand into notifications (in batches, by the runner)."""
        ...


class NullDispatcher:
    """Hands nothing over; the sweeper finds the rows (used by CLI commands)."""

    def dispatch(self, deliveries: list[Due]) -> None:
        return None

    def expand(self, send_ids: list[str]) -> None:
        return None


@dataclass
class AppContext:
    settings: Settings
    db: Database
    cursors: CursorSigner
    verifier: TokenVerifier
    providers: ProviderRegistry
    secret_key: str
    http: httpx.AsyncClient
    hub: MemoryHub
    dispatcher: Dispatcher = field(default_factory=NullDispatcher)
    clock: Clock = field(default_factory=get_clock)
    vapid_public_key: str = ""
    send_slots: asyncio.Semaphore | None = None  # the delivery runner's, made on first use
    known_tenants: set[str] = field(default_factory=set)
    seeded_tenants: set[str] = field(default_factory=set)
