"""A real uvicorn server in the test's event loop, for WebSocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import Service
from tidings.config import Settings
from tidings.main import create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer(Service):
    def __init__(self, app: Any, client: httpx.AsyncClient, port: int) -> None:
        super().__init__(app, client)
        self.port = port

    def ws_url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws" + (f"?{query}" if query else "")


@contextlib.asynccontextmanager
async def live_server(settings: Settings, **options: Any) -> AsyncIterator[LiveServer]:
    app = create_app(settings, configure_process=False, **options)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        ws_ping_interval=None,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield LiveServer(app, client, port)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[LiveServer]:
    async with live_server(settings) as server:
        yield server
