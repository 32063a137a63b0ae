"""Live events: written with the change that caused them, published after commit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.context import AppContext
from tidings.kit.jobs import after_commit
from tidings.realtime import repository

REPLAY_LIMIT = 5000


async def emit(
    session: AsyncSession,
    ctx: AppContext,
    tenant_id: str,
    events: Sequence[tuple[str, str, dict[str, Any]]],
) -> None:
    """Log ``(recipient, type, data)`` events in this transaction; publish them after it."""
    frames = await repository.append(session, tenant_id, events, ctx.clock.now())
    _publish(session, ctx, tenant_id, frames)


async def emit_reserved(
    session: AsyncSession,
    ctx: AppContext,
    tenant_id: str,
    events: Sequence[tuple[str, str, dict[str, Any]]],
    reserved: Mapping[str, repository.Reserved],
) -> None:
    """``emit`` with the seqs already taken (``repository.reserve``)."""
    frames = await repository.record(session, tenant_id, events, reserved, ctx.clock.now())
    _publish(session, ctx, tenant_id, frames)


def _publish(
    session: AsyncSession,
    ctx: AppContext,
    tenant_id: str,
    frames: list[tuple[str, dict[str, Any]]],
) -> None:
    if frames:
        after_commit(session, lambda: ctx.hub.publish(tenant_id, frames))


@dataclass(frozen=True)
class Backlog:
    current: int
    frames: list[dict[str, Any]] | None  # None: ``since`` is older than the log keeps


async def backlog(ctx: AppContext, tenant_id: str, user: str, since: int | None) -> Backlog:
    """The user's current seq and, with ``since``, the logged events after it."""
    async with ctx.db.transaction(write=False) as session:
        current = await repository.current_seq(session, tenant_id, user)
        if since is None:
            return Backlog(current, [])
        if since == current:
            return Backlog(current, [])
        oldest = await repository.oldest_seq(session, tenant_id, user)
        if since > current or oldest is None or since < oldest - 1:
            return Backlog(current, None)
        frames = await repository.after(session, tenant_id, user, since, limit=REPLAY_LIMIT + 1)
    if len(frames) > REPLAY_LIMIT:
        return Backlog(current, None)
    return Backlog(current, frames)


async def missed(ctx: AppContext, tenant_id: str, user: str, since: int) -> list[dict[str, Any]]:
    """Events after ``since`` (to fill a gap when frames were published out of order)."""
    async with ctx.db.transaction(write=False) as session:
        return await repository.after(session, tenant_id, user, since, limit=REPLAY_LIMIT)
