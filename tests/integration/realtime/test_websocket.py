"""GET /v1/ws: authentication, hello, live events, replay with since, reset, lifetime."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import Tokens, make_settings
from tests.integration.helpers import eventually, send
from tests.integration.realtime.conftest import LiveServer, live_server


def _bearer(tokens: Tokens, sub: str, tenant: str = "acme") -> str:
    return tokens.user(sub, tenant)["Authorization"].removeprefix("Bearer ")


async def _open(server: LiveServer, tokens: Tokens, sub: str, query: str = "") -> ClientConnection:
    return await connect(
        server.ws_url(query), subprotocols=["tidings.v1", f"bearer.{_bearer(tokens, sub)}"]
    )


async def _frame(ws: ClientConnection, timeout: float = 3.0) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame


async def _frames_until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = await _frame(ws)
        frames.append(frame)
        if frame["type"] == kind:
            return frames


async def test_hello_then_live_events_in_order(live: LiveServer, tokens: Tokens) -> None:
    ws = await _open(live, tokens, "cand")
    assert ws.subprotocol == "tidings.v1"
    hello = await _frame(ws)
    assert hello == {"type": "hello", "seq": 0, "data": {}}
    accepted = await send(live.client, tokens, recipients=["cand"], title="Hi", body="There")
    created, count = await _frame(ws), await _frame(ws)
    assert created["type"] == "notification.created" and created["seq"] == 1
    assert created["data"]["id"] == accepted["notifications"][0]["id"]
    assert created["data"]["title"] == "Hi"
    assert count == {"type": "unread_count", "seq": 2, "data": {"count": 1}}
    item = created["data"]["id"]
    user = tokens.user("cand")
    await live.client.post(f"/v1/me/notifications/{item}/read", headers=user)
    assert [(f["type"], f["data"]) for f in (await _frame(ws), await _frame(ws))] == [
        ("notification.read", {"ids": [item]}),
        ("unread_count", {"count": 0}),
    ]
    await live.client.post(f"/v1/me/notifications/{item}/unread", headers=user)
    assert (await _frame(ws))["type"] == "notification.unread"
    assert (await _frame(ws))["data"] == {"count": 1}
    await live.client.post("/v1/me/notifications/read-all", headers=user)
    assert (await _frame(ws))["data"] == {"ids": [item]}
    assert (await _frame(ws))["data"] == {"count": 0}
    await live.client.delete(f"/v1/me/notifications/{item}", headers=user)
    deleted = await _frame(ws)
    assert (deleted["type"], deleted["data"], deleted["seq"]) == (
        "notification.deleted",
        {"id": item},
        9,
    )
    await ws.close()


async def test_other_users_events_never_arrive(live: LiveServer, tokens: Tokens) -> None:
    ws = await _open(live, tokens, "cand")
    await _frame(ws)
    await send(live.client, tokens, recipients=["someone-else"], title="x", body="y")
    await send(live.client, tokens, tenant="globex", recipients=["cand"], title="x", body="y")
    with pytest.raises(TimeoutError):
        await _frame(ws, timeout=0.5)
    await ws.close()


async def test_reconnect_with_since_replays_without_gap_or_duplicate(
    live: LiveServer, tokens: Tokens
) -> None:
    ws = await _open(live, tokens, "cand")
    await _frame(ws)
    await send(live.client, tokens, recipients=["cand"], title="one", body="b")
    first = [await _frame(ws), await _frame(ws)]
    await ws.close()
    for title in ("two", "three"):  # while disconnected
        await send(live.client, tokens, recipients=["cand"], title=title, body="b")
    ws = await _open(live, tokens, "cand", f"since={first[-1]['seq']}")
    hello = await _frame(ws)
    assert hello["seq"] == 6
    replayed = [await _frame(ws) for _ in range(4)]
    await send(live.client, tokens, recipients=["cand"], title="four", body="b")
    fresh = [await _frame(ws), await _frame(ws)]
    seqs = [f["seq"] for f in first + replayed + fresh]
    assert seqs == list(range(1, 9))
    titles = [
        f["data"]["title"] for f in first + replayed + fresh if f["type"] == "notification.created"
    ]
    assert titles == ["one", "two", "three", "four"]
    await ws.close()


async def test_since_outside_the_log_gets_reset(live: LiveServer, tokens: Tokens) -> None:
    await send(live.client, tokens, recipients=["cand"], title="one", body="b")
    for since in ("99", "0"):
        ws = await _open(live, tokens, "cand", f"since={since}")
        hello = await _frame(ws)
        nxt = await _frame(ws)
        if since == "99":  # ahead of the log: the client's state is not ours
            assert nxt == {"type": "reset", "seq": hello["seq"], "data": {}}
        else:  # everything is still in the log
            assert nxt["seq"] == 1
        await ws.close()


@pytest.mark.parametrize(
    ("protocols", "query"),
    [
        (["tidings.v1"], ""),
        (["tidings.v1", "bearer.not-a-token"], ""),
        (["tidings.v1"], "token=garbage"),
    ],
)
async def test_bad_tokens_are_closed_with_4401(
    live: LiveServer, protocols: list[str], query: str
) -> None:
    ws = await connect(live.ws_url(query), subprotocols=protocols)  # type: ignore[arg-type]
    with pytest.raises(ConnectionClosed) as closed:
        await _frame(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_query_token_and_bad_since(live: LiveServer, tokens: Tokens) -> None:
    ws = await connect(live.ws_url(f"token={_bearer(tokens, 'cand')}"))
    assert (await _frame(ws))["type"] == "hello"
    await ws.close()
    ws = await connect(live.ws_url(f"token={_bearer(tokens, 'cand')}&since=-1"))
    with pytest.raises(ConnectionClosed) as closed:
        await _frame(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


async def test_heartbeat_and_lifetime(tmp_path: Path, database_url: str, tokens: Tokens) -> None:
    settings = make_settings(
        tmp_path, database_url, ws_heartbeat_seconds=0.2, ws_max_lifetime_seconds=0.7
    )
    async with live_server(settings) as server:
        ws = await _open(server, tokens, "cand")
        frames = await _frames_until(ws, "reconnect")
        assert frames[0]["type"] == "hello"
        assert {f["type"] for f in frames[1:-1]} == {"ping"}
        with pytest.raises(ConnectionClosed):
            await _frame(ws)


class StalledSocket:
    """A WebSocket whose peer stopped reading: every send after the first blocks."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed_with: int | None = None
        self.headers: dict[str, str] = {}
        self._gone = asyncio.Event()

    async def send_text(self, text: str) -> None:
        if self.sent:
            await asyncio.Event().wait()  # the peer's buffers are full
        self.sent.append(json.loads(text))

    async def receive(self) -> dict[str, Any]:
        await self._gone.wait()
        return {"type": "websocket.disconnect"}

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed_with = code
        self._gone.set()


async def test_a_client_that_does_not_read_is_dropped(
    tmp_path: Path, database_url: str, tokens: Tokens
) -> None:
    from tests.conftest import running
    from tidings.auth.principal import Principal
    from tidings.realtime.endpoints import CLOSE_TOO_SLOW, _Connection

    settings = make_settings(tmp_path, database_url, ws_send_timeout_seconds=0.2)
    async with running(settings) as svc:
        hub = svc.ctx.hub
        stalled = StalledSocket()
        connection = _Connection(svc.ctx, stalled, Principal("acme", "cand"))  # type: ignore[arg-type]
        task = asyncio.create_task(connection.run(None))
        reader = hub.subscribe("acme", "cand")  # another socket of the same user
        await eventually(lambda: _true(hub.connections == 2))
        hub.publish("acme", [("cand", {"type": "unread_count", "seq": 1, "data": {"count": 1}})])
        await asyncio.wait_for(task, 2)  # released by the send timeout
        assert stalled.sent[0]["type"] == "hello"
        assert hub.connections == 1
        assert reader.queue.get_nowait()["seq"] == 1  # the other reader was not held up
        reader.close()

        # a socket whose queue overflows (a burst it cannot take) is told to go at once
        hub._queue_size = 2
        quick = StalledSocket()
        quick.send_text = _instant(quick)  # type: ignore[method-assign]
        connection = _Connection(svc.ctx, quick, Principal("acme", "cand"))  # type: ignore[arg-type]
        task = asyncio.create_task(connection.run(None))
        await eventually(lambda: _true(hub.connections == 1))
        hub.publish("acme", [("cand", {"type": "t", "seq": i, "data": {}}) for i in range(1, 6)])
        await asyncio.wait_for(task, 2)
        assert quick.closed_with == CLOSE_TOO_SLOW
        assert hub.connections == 0


async def _true(value: bool) -> bool:
    return value


def _instant(socket_: StalledSocket) -> Any:
    async def send_text(text: str) -> None:
        socket_.sent.append(json.loads(text))

    return send_text
