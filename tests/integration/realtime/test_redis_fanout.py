"""With TIDINGS_REDIS_URL, an event committed through one API process reaches a socket
held by another."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.conftest import Tokens, make_settings
from tests.integration.helpers import send
from tests.integration.realtime.conftest import live_server

pytestmark = pytest.mark.usefixtures("redis_url")


async def test_event_through_one_process_reaches_a_socket_on_another(
    tmp_path: Path, database_url: str, redis_url: str, tokens: Tokens
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"  # pub/sub channels are shared by every test run
    settings_a = make_settings(tmp_path / "a", database_url, redis_url=redis_url)
    settings_b = make_settings(tmp_path / "b", database_url, redis_url=redis_url)
    async with live_server(settings_a) as a, live_server(settings_b) as b:
        bearer = tokens.user("cand", tenant)["Authorization"].removeprefix("Bearer ")
        ws = await connect(b.ws_url(), subprotocols=["tidings.v1", f"bearer.{bearer}"])
        assert json.loads(await ws.recv())["type"] == "hello"
        await asyncio.sleep(0.2)  # B's subscription reaches Redis
        started = asyncio.get_running_loop().time()
        accepted = await send(
            a.client, tokens, tenant=tenant, recipients=["cand"], title="from A", body="b"
        )
        frame = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
        assert asyncio.get_running_loop().time() - started < 1.0
        assert frame["type"] == "notification.created"
        assert frame["data"]["id"] == accepted["notifications"][0]["id"]
        assert json.loads(await ws.recv())["type"] == "unread_count"
        await ws.close()


async def test_redis_outage_never_fails_a_request(
    tmp_path: Path, database_url: str, tokens: Tokens
) -> None:
    settings = make_settings(tmp_path, database_url, redis_url="redis://127.0.0.1:1/0")
    async with live_server(settings) as server:
        accepted = await send(server.client, tokens, recipients=["cand"], title="t", body="b")
        assert accepted["status"] == "accepted"
        r = await server.client.get("/readyz")
        assert r.status_code == 200  # Redis is not needed to be ready
