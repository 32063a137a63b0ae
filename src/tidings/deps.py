"""Request dependencies shared by every router: the app context and the transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.context import AppContext


# Dependencies are coroutines even when they do not await: FastAPI runs a plain
# function in its thread pool, a hop per request for nothing.
async def get_ctx(request: Request) -> AppContext:
    return _ctx(request)


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with _ctx(request).db.transaction(write=False) as session:
        yield session


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    # scope="function" below: the commit happens before the response is sent, so a
    # 2xx always means the change is durable.
    async with _ctx(request).db.transaction(write=True) as session:
        yield session


Ctx = Annotated[AppContext, Depends(get_ctx)]
ReadSession = Annotated[AsyncSession, Depends(_read_session, scope="function")]
WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
