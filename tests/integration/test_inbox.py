"""The in-app inbox API of SPEC 6, as the recipient sees it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Service, Tokens
from tests.integration.helpers import send


async def _inbox(service: Service, tokens: Tokens, sub: str, **params: Any) -> dict[str, Any]:
    r = await service.client.get("/v1/me/notifications", params=params, headers=tokens.user(sub))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _seed(service: Service, tokens: Tokens) -> list[str]:
    ids = []
    for i, (category, priority) in enumerate(
        [
            ("interview", "high"),
            ("application", "normal"),
            ("interview", "low"),
            ("offer", "urgent"),
            ("application", "normal"),
        ]
    ):
        accepted = await send(
            service.client,
            tokens,
            recipients=["cand"],
            title=f"t{i}",
            body=f"b{i}",
            category=category,
            priority=priority,
        )
        ids.append(accepted["notifications"][0]["id"])
    return ids


async def test_list_is_newest_first_and_pages_with_signed_cursors(
    service: Service, tokens: Tokens
) -> None:
    ids = await _seed(service, tokens)
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await _inbox(service, tokens, "cand", **params)
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert seen == list(reversed(ids))
    assert cursor is None
    item = (await _inbox(service, tokens, "cand", limit=1))["items"][0]
    assert set(item) == {
        "id",
        "send_id",
        "template",
        "category",
        "priority",
        "title",
        "body",
        "action_url",
        "data",
        "created_at",
        "read",
        "read_at",
    }
    assert item["created_at"].endswith("Z")


async def test_cursor_is_bound_to_filters_and_signed(service: Service, tokens: Tokens) -> None:
    await _seed(service, tokens)
    page = await _inbox(service, tokens, "cand", limit=1, category="interview")
    cursor = page["next_cursor"]
    assert cursor
    for params in (
        {"cursor": cursor},
        {"cursor": cursor, "category": "offer"},
        {"cursor": "garbage"},
        {"cursor": cursor[:-2] + "xx", "category": "interview"},
    ):
        r = await service.client.get(
            "/v1/me/notifications", params=params, headers=tokens.user("cand")
        )
        assert r.status_code == 400, (params, r.text)
    # another user's cursor does not work either
    r = await service.client.get(
        "/v1/me/notifications",
        headers=tokens.user("other"),
        params={"cursor": cursor, "category": "interview"},
    )
    assert r.status_code == 400
    for limit in (0, 201, -1):
        r = await service.client.get(
            "/v1/me/notifications", params={"limit": limit}, headers=tokens.user("cand")
        )
        assert r.status_code == 422


async def test_filters(service: Service, tokens: Tokens) -> None:
    ids = await _seed(service, tokens)
    assert len((await _inbox(service, tokens, "cand", category="interview"))["items"]) == 2
    assert len((await _inbox(service, tokens, "cand", priority="normal"))["items"]) == 2
    await service.client.post(f"/v1/me/notifications/{ids[0]}/read", headers=tokens.user("cand"))
    unread = (await _inbox(service, tokens, "cand", unread="true"))["items"]
    read = (await _inbox(service, tokens, "cand", unread="false"))["items"]
    assert [i["id"] for i in read] == [ids[0]] and len(unread) == 4
    future = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert (await _inbox(service, tokens, "cand", since=future))["items"] == []
    assert len((await _inbox(service, tokens, "cand", until=future))["items"]) == 5
    r = await service.client.get(
        "/v1/me/notifications", params={"since": "2026-01-01T00:00:00"}, headers=tokens.user("cand")
    )
    assert r.status_code == 422  # a timestamp without a zone
    r = await service.client.get(
        "/v1/me/notifications",
        params={"template": "interview_reminder"},
        headers=tokens.user("cand"),
    )
    assert r.json()["items"] == []


async def test_read_unread_bulk_read_all_archive_and_counts(
    service: Service, tokens: Tokens
) -> None:
    client, user = service.client, tokens.user("cand")
    ids = await _seed(service, tokens)

    async def count() -> int:
        r = await client.get("/v1/me/notifications/unread-count", headers=user)
        value: int = r.json()["count"]
        return value

    assert await count() == 5
    r = await client.post(f"/v1/me/notifications/{ids[0]}/read", headers=user)
    assert r.status_code == 200 and r.json()["read"] is True and r.json()["read_at"]
    assert await count() == 4
    r = await client.post(f"/v1/me/notifications/{ids[0]}/unread", headers=user)
    assert r.json()["read"] is False and r.json()["read_at"] is None
    r = await client.post(
        "/v1/me/notifications/read", headers=user, json={"ids": [ids[0], ids[1], ids[1]]}
    )
    assert r.json() == {"updated": 2}
    r = await client.post("/v1/me/notifications/read", headers=user, json={"ids": [ids[0]]})
    assert r.json() == {"updated": 0}  # no state changed
    r = await client.post("/v1/me/notifications/read-all", headers=user)
    assert r.json() == {"updated": 3}
    assert await count() == 0
    await client.post(f"/v1/me/notifications/{ids[4]}/unread", headers=user)
    r = await client.delete(f"/v1/me/notifications/{ids[4]}", headers=user)
    assert r.status_code == 204
    assert await count() == 0
    assert (await client.get(f"/v1/me/notifications/{ids[4]}", headers=user)).status_code == 404
    assert len((await _inbox(service, tokens, "cand"))["items"]) == 4
    r = await client.post("/v1/me/notifications/read", headers=user, json={"ids": ["nope"]})
    assert r.status_code == 422


async def test_summary_counts_by_category_and_priority(service: Service, tokens: Tokens) -> None:
    ids = await _seed(service, tokens)
    user = tokens.user("cand")
    await service.client.post(f"/v1/me/notifications/{ids[1]}/read", headers=user)
    await service.client.delete(f"/v1/me/notifications/{ids[3]}", headers=user)
    summary = (await service.client.get("/v1/me/notifications/summary", headers=user)).json()
    assert summary == {
        "total": 4,
        "unread": 3,
        "by_category": {
            "interview": {"total": 2, "unread": 2},
            "application": {"total": 2, "unread": 1},
        },
        "by_priority": {
            "high": {"total": 1, "unread": 1},
            "normal": {"total": 2, "unread": 1},
            "low": {"total": 1, "unread": 1},
        },
    }


async def test_detail_and_unknown_ids(service: Service, tokens: Tokens) -> None:
    ids = await _seed(service, tokens)
    user = tokens.user("cand")
    r = await service.client.get(f"/v1/me/notifications/{ids[2]}", headers=user)
    assert r.status_code == 200 and r.json()["title"] == "t2"
    unknown = "0190d5b4-0000-7000-8000-000000000000"
    for method, path in (("GET", ""), ("POST", "/read"), ("POST", "/unread"), ("DELETE", "")):
        r = await service.client.request(
            method, f"/v1/me/notifications/{unknown}{path}", headers=user
        )
        assert r.status_code == 404, (method, path)
        r = await service.client.request(
            method, f"/v1/me/notifications/not-a-uuid{path}", headers=user
        )
        assert r.status_code == 422, (method, path)
