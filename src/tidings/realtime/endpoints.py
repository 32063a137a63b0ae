"""GET /v1/ws: the live event socket of the calling user."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.errors import Unauthorized
from tidings.realtime import service

log = logging.getLogger(__name__)
router = APIRouter(tags=["live"])

SUBPROTOCOL = "tidings.v1"
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4408
CLOSE_BAD_REQUEST = 4400
SUBSCRIBE_TIMEOUT = 2.0


def _offered(websocket: WebSocket) -> list[str]:
    header = websocket.headers.get("sec-websocket-protocol", "")
    return [part.strip() for part in header.split(",") if part.strip()]


@router.websocket("/ws")
async def live(websocket: WebSocket) -> None:
    """Live events: token as ``Sec-WebSocket-Protocol: tidings.v1, bearer.<JWT>`` or
    ``?token=``; ``?since=<seq>`` replays what was missed, then streams."""
    ctx: AppContext = websocket.app.state.ctx
    offered = _offered(websocket)
    token = next((p[len("bearer.") :] for p in offered if p.startswith("bearer.")), None)
    token = token or websocket.query_params.get("token")
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    try:
        if not token:
            raise Unauthorized("a token is required")
        principal = await ctx.verifier.verify(token)
    except Unauthorized as exc:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason=exc.detail[:120])
        return
    since_raw = websocket.query_params.get("since")
    since: int | None = None
    if since_raw is not None:
        if not since_raw.isdigit() or len(since_raw) > 18:
            await websocket.close(code=CLOSE_BAD_REQUEST, reason="since must be a sequence number")
            return
        since = int(since_raw)
    await _Connection(ctx, websocket, principal).run(since)


class _Connection:
    def __init__(self, ctx: AppContext, websocket: WebSocket, principal: Principal) -> None:
        self.ctx = ctx
        self.ws = websocket
        self.principal = principal
        self.last = 0
        settings = ctx.settings
        self.heartbeat = settings.ws_heartbeat_seconds
        self.lifetime = settings.ws_max_lifetime_seconds
        self.send_timeout = settings.ws_send_timeout_seconds

    async def run(self, since: int | None) -> None:
        tenant, user = self.principal.tenant, self.principal.sub
        # subscribe before reading the log: nothing committed in between is missed,
        # and duplicates are dropped by seq
        sub = self.ctx.hub.subscribe(tenant, user)
        reader = asyncio.create_task(self._read_until_closed())
        try:
            try:
                await asyncio.wait_for(sub.ready.wait(), SUBSCRIBE_TIMEOUT)
            except TimeoutError:  # fan-out is down: the log still has everything
                log.warning("live subscription not confirmed; serving without it")
            backlog = await service.backlog(self.ctx, tenant, user, since)
            await self._send({"type": "hello", "seq": backlog.current, "data": {}})
            self.last = backlog.current if since is None else since
            if backlog.frames is None:
                await self._send({"type": "reset", "seq": backlog.current, "data": {}})
                self.last = backlog.current
            else:
                for frame in backlog.frames:
                    await self._forward(frame)
            await self._stream(sub, reader)
        except WebSocketDisconnect:
            pass
        except _Gone:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.ws.close(code=CLOSE_TOO_SLOW, reason="too slow; reconnect with since"),
                    1.0,
                )
        finally:
            sub.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _stream(self, sub: Any, reader: asyncio.Task[None]) -> None:
        deadline = time.monotonic() + self.lifetime
        while True:
            if sub.overflowed.is_set():
                raise _Gone
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self._send({"type": "reconnect", "seq": self.last, "data": {}})
                await self.ws.close(code=1000, reason="connection lifetime reached")
                return
            getter = asyncio.ensure_future(sub.queue.get())
            done, _ = await asyncio.wait(
                {getter, reader},
                timeout=min(self.heartbeat, remaining),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if reader in done:
                getter.cancel()
                return
            if getter not in done:
                getter.cancel()
                await self._send({"type": "ping", "seq": self.last, "data": {}})
                continue
            await self._forward(getter.result())

    async def _forward(self, frame: dict[str, Any]) -> None:
        seq = int(frame["seq"])
        if seq <= self.last:
            return  # already sent (replayed, or published twice)
        if seq > self.last + 1:
            # an earlier event was published later than this one: take it from the log
            for missing in await service.missed(
                self.ctx, self.principal.tenant, self.principal.sub, self.last
            ):
                if int(missing["seq"]) > self.last:
                    await self._send(missing)
                    self.last = int(missing["seq"])
            if seq <= self.last:
                return
        await self._send(frame)
        self.last = seq

    async def _send(self, frame: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(self.ws.send_text(json.dumps(frame)), self.send_timeout)
        except TimeoutError:
            raise _Gone from None

    async def _read_until_closed(self) -> None:
        # clients have nothing to say; reading notices when they leave
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return


class _Gone(Exception):
    """The client stopped reading."""
