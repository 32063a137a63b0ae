"""Small helpers for the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.conftest import Tokens


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 5.0, interval: float = 0.02
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)


async def send(
    client: httpx.AsyncClient, tokens: Tokens, tenant: str = "acme", **body: Any
) -> dict[str, Any]:
    response = await client.post("/v1/notifications", json=body, headers=tokens.service(tenant))
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


async def settled(
    client: httpx.AsyncClient, tokens: Tokens, send_id: str, tenant: str = "acme"
) -> dict[str, Any]:
    """Wait until no delivery of the send is pending, scheduled or sending."""

    async def done() -> dict[str, Any] | None:
        r = await client.get(f"/v1/sends/{send_id}", headers=tokens.service(tenant))
        body: dict[str, Any] = r.json()
        return body if body["status"] in ("completed", "cancelled") else None

    result: dict[str, Any] = await eventually(done)
    return result


async def deliveries(
    client: httpx.AsyncClient, tokens: Tokens, tenant: str = "acme", **filters: str
) -> list[dict[str, Any]]:
    r = await client.get("/v1/deliveries", params=filters, headers=tokens.admin(tenant))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items
