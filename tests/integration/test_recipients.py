"""Recipients: merge upsert, contact data validation, paging, erasure, roles."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Service, Tokens, running
from tests.integration.helpers import deliveries, send, settled
from tidings.config import Settings
from tidings.kit.clock import FrozenClock

FULL = {
    "name": "Ada Lovelace",
    "email": "ada@example.test",
    "phone": "+14155550123",
    "locale": "en-GB",
    "timezone": "Europe/London",
    "data": {"stage": "onsite", "scores": [4, 5]},
}


def _names(problem: dict[str, Any]) -> set[str]:
    return {str(part) for error in problem["errors"] for part in error["loc"]}


async def _put(service: Service, tokens: Tokens, rid: str, body: dict[str, Any]) -> Any:
    return await service.client.put(f"/v1/recipients/{rid}", json=body, headers=tokens.service())


async def test_put_creates_then_merges(service: Service, tokens: Tokens) -> None:
    created = await _put(service, tokens, "cand-1", FULL)
    assert created.status_code == 201, created.text
    first = created.json()
    assert {k: first[k] for k in FULL} == FULL
    assert first["id"] == "cand-1"

    # omitted fields keep their value, null clears, data is replaced as a whole
    merged = await _put(service, tokens, "cand-1", {"phone": None, "data": {"stage": "offer"}})
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["phone"] is None
    assert body["data"] == {"stage": "offer"}
    for field in ("name", "email", "locale", "timezone"):
        assert body[field] == FULL[field]
    assert body["created_at"] == first["created_at"]
    updated = datetime.fromisoformat(body["updated_at"])
    assert updated >= datetime.fromisoformat(first["updated_at"])

    unchanged = await _put(service, tokens, "cand-1", {})
    assert unchanged.status_code == 200
    assert {k: unchanged.json()[k] for k in FULL} == {k: body[k] for k in FULL}

    cleared = await _put(
        service, tokens, "cand-1", {"name": None, "email": None, "locale": None, "data": None}
    )
    assert cleared.status_code == 200
    read = await service.client.get("/v1/recipients/cand-1", headers=tokens.service())
    assert read.status_code == 200
    assert {k: read.json()[k] for k in FULL} == {
        "name": None,
        "email": None,
        "phone": None,
        "locale": None,
        "timezone": "Europe/London",
        "data": {},
    }


async def test_concurrent_first_puts_create_once(
    service: Service, tokens: Tokens, backend: str, request: pytest.FixtureRequest
) -> None:
    for round_ in range(5):
        rid = f"racer-{round_}"
        answers = await asyncio.gather(
            *(_put(service, tokens, rid, {"name": f"n{i}"}) for i in range(10)),
            return_exceptions=True,
        )
        codes = sorted(str(getattr(a, "status_code", type(a).__name__)) for a in answers)
        assert codes == ["200"] * 9 + ["201"], codes
        read = await service.client.get(f"/v1/recipients/{rid}", headers=tokens.service())
        assert read.json()["name"] in {f"n{i}" for i in range(10)}


async def test_admin_may_upsert_too(service: Service, tokens: Tokens) -> None:
    r = await service.client.put(
        "/v1/recipients/cand-2", json={"name": "Grace"}, headers=tokens.admin()
    )
    assert r.status_code == 201, r.text
    r = await service.client.get("/v1/recipients/cand-2", headers=tokens.admin())
    assert r.json()["name"] == "Grace"


VALID: list[tuple[str, str]] = [
    ("email", "user@example.test"),
    ("email", "a@localhost"),
    ("email", "x@corp.internal"),
    ("email", "first.last+tag@sub.example.local"),
    ("phone", "+14155550123"),
    ("phone", "+491701234567"),
    ("locale", "de"),
    ("locale", "de-AT"),
    ("locale", "pt-BR"),
    ("timezone", "Europe/Berlin"),
    ("timezone", "America/Argentina/Buenos_Aires"),
    ("timezone", "UTC"),
]

INVALID: list[tuple[str, object]] = [
    ("email", "not-an-email"),
    ("email", "a@@example.test"),
    ("email", "@example.test"),
    ("email", "a b@example.test"),
    ("email", "a@example..test"),
    ("email", "a@-example.test"),
    ("email", "a@example.test\r\nBcc: x@y.test"),
    ("email", ""),
    ("phone", "4155550123"),
    ("phone", "+1 415 555 0123"),
    ("phone", "+04155550123"),
    ("phone", "+1234567890123456"),
    ("phone", "+1-415-555-0123"),
    ("locale", "english!"),
    ("locale", "d"),
    ("locale", "de AT"),
    ("timezone", "Mars/Olympus_Mons"),
    ("timezone", "CEST+2"),
    ("timezone", "../../etc/passwd"),
    ("name", 42),
    ("name", "Ada\u0000"),
    ("name", "x" * 201),
    ("data", ["not", "an", "object"]),
    ("data", "text"),
]


async def test_valid_contact_data_is_stored(service: Service, tokens: Tokens) -> None:
    for index, (field, value) in enumerate(VALID):
        rid = f"valid-{index}"
        r = await _put(service, tokens, rid, {field: value})
        assert r.status_code == 201, (field, value, r.text)
        assert r.json()[field] == value
        read = await service.client.get(f"/v1/recipients/{rid}", headers=tokens.service())
        assert read.json()[field] == value, (field, value)


async def test_invalid_contact_data_is_422_naming_the_field(
    service: Service, tokens: Tokens
) -> None:
    await _put(service, tokens, "cand-1", FULL)
    for field, value in INVALID:
        r = await _put(service, tokens, "cand-1", {field: value})
        assert r.status_code == 422, (field, value, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["status"] == 422
        assert field in _names(problem), (field, value, problem)
    read = await service.client.get("/v1/recipients/cand-1", headers=tokens.service())
    assert {k: read.json()[k] for k in FULL} == FULL


async def test_invalid_upsert_does_not_create(service: Service, tokens: Tokens) -> None:
    r = await _put(service, tokens, "never", {"email": "garbage"})
    assert r.status_code == 422
    assert (
        await service.client.get("/v1/recipients/never", headers=tokens.service())
    ).status_code == 404


async def test_unknown_fields_are_422(service: Service, tokens: Tokens) -> None:
    r = await _put(service, tokens, "cand-1", {"name": "Ada", "nickname": "ada"})
    assert r.status_code == 422, r.text
    assert "nickname" in _names(r.json())
    assert (
        await service.client.get("/v1/recipients/cand-1", headers=tokens.service())
    ).status_code == 404


async def test_invalid_recipient_id_is_rejected(service: Service, tokens: Tokens) -> None:
    for rid in ("bad id", "a" * 129, "semi;colon", "caf\u00e9"):
        r = await _put(service, tokens, rid, {"name": "x"})
        assert r.status_code == 422, (rid, r.text)
        r = await service.client.get(f"/v1/recipients/{rid}", headers=tokens.service())
        assert r.status_code == 422, (rid, r.text)
    listing = await service.client.get("/v1/recipients", headers=tokens.service())
    assert listing.json()["items"] == []


async def test_get_unknown_recipient_is_404(service: Service, tokens: Tokens) -> None:
    r = await service.client.get("/v1/recipients/nobody", headers=tokens.service())
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["instance"] == r.headers["x-request-id"]


async def test_other_tenants_recipients_are_invisible(service: Service, tokens: Tokens) -> None:
    await _put(service, tokens, "cand-1", FULL)
    other = tokens.service("globex")
    assert (await service.client.get("/v1/recipients/cand-1", headers=other)).status_code == 404
    assert (await service.client.delete("/v1/recipients/cand-1", headers=other)).status_code == 404
    assert (await service.client.get("/v1/recipients", headers=other)).json()["items"] == []
    # the same id in another tenant is another recipient
    r = await service.client.put("/v1/recipients/cand-1", json={"name": "Other"}, headers=other)
    assert r.status_code == 201
    mine = await service.client.get("/v1/recipients/cand-1", headers=tokens.service())
    assert mine.json()["name"] == FULL["name"]


async def test_list_is_newest_first_and_pages_with_cursors(
    settings: Settings, tokens: Tokens
) -> None:
    clock = FrozenClock(datetime(2030, 1, 1, 9, 0, tzinfo=UTC))
    # ids sort against creation order, so only created_at can give the expected order
    created = ["r7", "r6", "r5", "r4", "r3", "r2", "r1"]
    async with running(settings, clock=clock, run_deliveries=False) as svc:
        for rid in created:
            r = await svc.client.put(f"/v1/recipients/{rid}", json={}, headers=tokens.service())
            assert r.status_code == 201
            clock.advance(timedelta(seconds=1))
        # updating does not move a recipient in the list
        await svc.client.put("/v1/recipients/r7", json={"name": "x"}, headers=tokens.service())

        pages: list[list[str]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor is not None:
                params["cursor"] = cursor
            r = await svc.client.get("/v1/recipients", params=params, headers=tokens.service())
            assert r.status_code == 200, r.text
            page = r.json()
            pages.append([item["id"] for item in page["items"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert len(pages) < 5, pages
        assert pages == [["r1", "r2", "r3"], ["r4", "r5", "r6"], ["r7"]]

        whole = await svc.client.get("/v1/recipients", headers=tokens.service())
        assert [i["id"] for i in whole.json()["items"]] == list(reversed(created))
        assert whole.json()["next_cursor"] is None
        exact = await svc.client.get(
            "/v1/recipients", params={"limit": 7}, headers=tokens.service()
        )
        assert len(exact.json()["items"]) == 7 and exact.json()["next_cursor"] is None


async def test_bad_cursors_are_400(service: Service, tokens: Tokens) -> None:
    client = service.client
    for rid in ("a", "b", "c"):
        await _put(service, tokens, rid, {})
    first = await client.get("/v1/recipients", params={"limit": 1}, headers=tokens.service())
    good = first.json()["next_cursor"]
    assert good

    # a cursor from other lists: templates, deliveries
    templates = await client.get("/v1/templates", params={"limit": 1}, headers=tokens.service())
    template_cursor = templates.json()["next_cursor"]
    for rid in ("a", "b"):
        await send(client, tokens, recipients=[rid], title="t", body="b")
    delivery_page = await client.get("/v1/deliveries", params={"limit": 1}, headers=tokens.admin())
    delivery_cursor = delivery_page.json()["next_cursor"]
    assert template_cursor and delivery_cursor

    # the same list in another tenant is another list
    other_tenant = await client.get(
        "/v1/recipients", params={"cursor": good}, headers=tokens.service("globex")
    )
    assert other_tenant.status_code == 400, other_tenant.text

    payload, _, mac = good.partition(".")
    for cursor in (
        "garbage",
        "not.base64!",
        template_cursor,
        delivery_cursor,
        f"{payload}.{mac[::-1]}",
        f"{payload[:-2]}.{mac}",
        "",
    ):
        r = await client.get("/v1/recipients", params={"cursor": cursor}, headers=tokens.service())
        assert r.status_code == 400, (cursor, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    ok = await client.get("/v1/recipients", params={"cursor": good}, headers=tokens.service())
    assert ok.status_code == 200
    assert [i["id"] for i in ok.json()["items"]] == ["b", "a"]


async def test_limit_outside_range_is_422(service: Service, tokens: Tokens) -> None:
    for limit in ("0", "201", "-1", "ten"):
        r = await service.client.get(
            "/v1/recipients", params={"limit": limit}, headers=tokens.service()
        )
        assert r.status_code == 422, (limit, r.text)
        assert "limit" in _names(r.json())


async def test_limit_bounds_are_accepted(service: Service, tokens: Tokens) -> None:
    for limit in (1, 200):
        r = await service.client.get(
            "/v1/recipients", params={"limit": limit}, headers=tokens.service()
        )
        assert r.status_code == 200, r.text


async def test_delete_erases_recipient_and_inbox(service: Service, tokens: Tokens) -> None:
    client = service.client
    await _put(service, tokens, "leaver", FULL)
    await _put(service, tokens, "stayer", {"name": "Stays"})
    r = await client.post(
        "/v1/topics/openings/subscribers",
        json={"recipient_ids": ["leaver", "stayer"]},
        headers=tokens.service(),
    )
    assert r.status_code == 200, r.text
    accepted = await send(client, tokens, recipients=["leaver", "stayer"], title="Hi", body="There")
    await settled(client, tokens, accepted["id"])
    inbox = await client.get("/v1/me/notifications", headers=tokens.user("leaver"))
    assert [i["title"] for i in inbox.json()["items"]] == ["Hi"]
    assert len(await deliveries(client, tokens, recipient_id="leaver")) == 1

    r = await client.delete("/v1/recipients/leaver", headers=tokens.service())
    assert r.status_code == 204, r.text
    assert r.content == b""

    assert (await client.get("/v1/recipients/leaver", headers=tokens.service())).status_code == 404
    inbox = await client.get("/v1/me/notifications", headers=tokens.user("leaver"))
    assert inbox.status_code == 200
    assert inbox.json()["items"] == []
    count = await client.get("/v1/me/notifications/unread-count", headers=tokens.user("leaver"))
    assert count.json() == {"count": 0}
    assert await deliveries(client, tokens, recipient_id="leaver") == []
    listing = await client.get("/v1/recipients", headers=tokens.service())
    assert [i["id"] for i in listing.json()["items"]] == ["stayer"]

    # the other recipient of the same send keeps everything
    kept = await client.get("/v1/me/notifications", headers=tokens.user("stayer"))
    assert [i["title"] for i in kept.json()["items"]] == ["Hi"]
    assert len(await deliveries(client, tokens, recipient_id="stayer")) == 1

    members = await client.get("/v1/topics/openings/subscribers", headers=tokens.service())
    assert [m["recipient_id"] for m in members.json()["items"]] == ["stayer"]

    again = await client.delete("/v1/recipients/leaver", headers=tokens.service())
    assert again.status_code == 404
    # the id can be used again, as a new and empty recipient
    fresh = await _put(service, tokens, "leaver", {"name": "New"})
    assert fresh.status_code == 201
    assert fresh.json()["email"] is None and fresh.json()["data"] == {}


async def test_delete_unknown_recipient_is_404(service: Service, tokens: Tokens) -> None:
    r = await service.client.delete("/v1/recipients/nobody", headers=tokens.admin())
    assert r.status_code == 404


async def test_recipient_endpoints_need_service_or_admin(service: Service, tokens: Tokens) -> None:
    client = service.client
    await _put(service, tokens, "cand-1", FULL)
    user = tokens.user("cand-1")
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PUT", "/v1/recipients/cand-1", {"name": "Hacked"}),
        ("PUT", "/v1/recipients/new-one", {"name": "New"}),
        ("GET", "/v1/recipients", None),
        ("GET", "/v1/recipients/cand-1", None),
        ("DELETE", "/v1/recipients/cand-1", None),
    ]
    for method, path, body in calls:
        r = await client.request(method, path, json=body, headers=user)
        assert r.status_code == 403, (method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        r = await client.request(method, path, json=body)
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        r = await client.request(
            method, path, json=body, headers={"Authorization": "Bearer not-a-jwt"}
        )
        assert r.status_code == 401, (method, path, r.text)
    read = await client.get("/v1/recipients/cand-1", headers=tokens.service())
    assert {k: read.json()[k] for k in FULL} == FULL
    assert (await client.get("/v1/recipients/new-one", headers=tokens.service())).status_code == 404
