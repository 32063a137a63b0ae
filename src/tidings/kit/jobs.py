"""Work to hand over only after the surrounding transaction has committed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

AfterCommit = Callable[[], Awaitable[None] | None]
_KEY = "tidings.after_commit"


def after_commit(session: AsyncSession, job: AfterCommit) -> None:
    """Buffer ``job``; the boundary that commits runs it, a rollback drops it."""
    session.info.setdefault(_KEY, []).append(job)


def take_after_commit(session: AsyncSession) -> list[AfterCommit]:
    jobs: list[AfterCommit] = session.info.pop(_KEY, [])
    return jobs


def drop_after_commit(session: AsyncSession) -> None:
    session.info.pop(_KEY, None)
