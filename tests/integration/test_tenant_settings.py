"""Tenant settings: admin only, validated mailboxes, merge semantics, one tenant each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Service, Tokens

EMPTY = {"email_from": None, "email_reply_to": None}


async def _settings(service: Service, tokens: Tokens, tenant: str = "acme") -> dict[str, Any]:
    r = await service.client.get("/v1/tenant/settings", headers=tokens.admin(tenant))
    assert r.status_code == 200, r.text
    return _identity(r.json())


def _identity(body: dict[str, Any]) -> dict[str, Any]:
    """The e-mail identity part of the settings (provider order is tested elsewhere)."""
    return {key: body[key] for key in ("email_from", "email_reply_to")}


async def _put(
    service: Service, tokens: Tokens, body: dict[str, Any], tenant: str = "acme"
) -> dict[str, Any]:
    r = await service.client.put("/v1/tenant/settings", json=body, headers=tokens.admin(tenant))
    assert r.status_code == 200, r.text
    return _identity(r.json())


async def test_only_admin_reads_and_writes_settings(service: Service, tokens: Tokens) -> None:
    client = service.client
    body = {"email_from": "jobs@acme.test"}
    for headers in (tokens.service(), tokens.user("cand-1")):
        r = await client.get("/v1/tenant/settings", headers=headers)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
        r = await client.put("/v1/tenant/settings", json=body, headers=headers)
        assert r.status_code == 403, r.text
    assert (await client.get("/v1/tenant/settings")).status_code == 401
    assert (await client.put("/v1/tenant/settings", json=body)).status_code == 401
    # none of the refused writes changed anything
    assert await _settings(service, tokens) == EMPTY


ACCEPTED = [
    "Acme Hiring <jobs@acme.example>",
    "jobs@acme.test",
    '"Acme, Hiring" <jobs@acme.test>',
    "noreply@localhost",
]

REJECTED = [
    "garbage",
    "",
    "Acme Hiring <jobs@>",
    "jobs@acme..test",
    "a@b.test\r\nBcc: x@y.test",
    "a@b.test\nBcc: x@y.test",
    "Acme <a@b.test>\u0000",
]


async def test_email_from_accepts_mailboxes(service: Service, tokens: Tokens) -> None:
    for mailbox in ACCEPTED:
        assert await _put(service, tokens, {"email_from": mailbox}) == {
            "email_from": mailbox,
            "email_reply_to": None,
        }
        assert (await _settings(service, tokens))["email_from"] == mailbox


async def test_email_from_rejects_garbage_and_header_injection(
    service: Service, tokens: Tokens
) -> None:
    await _put(service, tokens, {"email_from": "jobs@acme.test"})
    for mailbox in REJECTED:
        for field in ("email_from", "email_reply_to"):
            r = await service.client.put(
                "/v1/tenant/settings", json={field: mailbox}, headers=tokens.admin()
            )
            assert r.status_code == 422, (field, mailbox, r.text)
            problem = r.json()
            assert r.headers["content-type"] == "application/problem+json"
            assert any(field in e["loc"] for e in problem["errors"]), problem
    assert await _settings(service, tokens) == {
        "email_from": "jobs@acme.test",
        "email_reply_to": None,
    }


@pytest.mark.parametrize(
    "mailbox", ["jobs@acme.test, attacker@evil.test", "Acme <jobs@acme.test>, x@evil.test"]
)
async def test_email_from_rejects_address_lists(
    service: Service, tokens: Tokens, mailbox: str
) -> None:
    r = await service.client.put(
        "/v1/tenant/settings", json={"email_from": mailbox}, headers=tokens.admin()
    )
    assert r.status_code == 422, r.text
    assert await _settings(service, tokens) == EMPTY


async def test_unknown_keys_and_wrong_types_are_422(service: Service, tokens: Tokens) -> None:
    for body, field in (
        ({"smtp_password": "hunter2"}, "smtp_password"),
        ({"email_from": 42}, "email_from"),
        ({"email_from": ["jobs@acme.test"]}, "email_from"),
    ):
        r = await service.client.put("/v1/tenant/settings", json=body, headers=tokens.admin())
        assert r.status_code == 422, r.text
        assert any(field in e["loc"] for e in r.json()["errors"]), r.json()
    assert await _settings(service, tokens) == EMPTY


async def test_omitted_keys_keep_their_value_and_null_removes(
    service: Service, tokens: Tokens
) -> None:
    assert await _settings(service, tokens) == EMPTY
    await _put(service, tokens, {"email_from": "Acme Hiring <jobs@acme.example>"})
    both = await _put(service, tokens, {"email_reply_to": "hr@acme.test"})
    assert both == {
        "email_from": "Acme Hiring <jobs@acme.example>",
        "email_reply_to": "hr@acme.test",
    }
    assert await _put(service, tokens, {}) == both
    assert await _settings(service, tokens) == both
    without_from = await _put(service, tokens, {"email_from": None})
    assert without_from == {"email_from": None, "email_reply_to": "hr@acme.test"}
    assert await _settings(service, tokens) == without_from
    await _put(service, tokens, {"email_reply_to": None})
    assert await _settings(service, tokens) == EMPTY


async def test_settings_are_per_tenant(service: Service, tokens: Tokens) -> None:
    await _put(service, tokens, {"email_from": "jobs@acme.test"}, tenant="acme")
    await _put(service, tokens, {"email_reply_to": "hr@globex.test"}, tenant="globex")
    assert await _settings(service, tokens, "acme") == {
        "email_from": "jobs@acme.test",
        "email_reply_to": None,
    }
    assert await _settings(service, tokens, "globex") == {
        "email_from": None,
        "email_reply_to": "hr@globex.test",
    }
    assert await _settings(service, tokens, "initech") == EMPTY
    await _put(service, tokens, {"email_from": None}, tenant="globex")
    assert (await _settings(service, tokens, "acme"))["email_from"] == "jobs@acme.test"


async def test_concurrent_puts_of_different_keys_both_stick(
    service: Service, tokens: Tokens, backend: str, request: pytest.FixtureRequest
) -> None:
    await _put(service, tokens, {})
    outcomes = []
    for i in range(20):
        await _put(service, tokens, {"email_from": None, "email_reply_to": None})
        await asyncio.gather(
            _put(service, tokens, {"email_from": f"from{i}@acme.test"}),
            _put(service, tokens, {"email_reply_to": f"reply{i}@acme.test"}),
        )
        outcomes.append(await _settings(service, tokens))
    expected = [
        {"email_from": f"from{i}@acme.test", "email_reply_to": f"reply{i}@acme.test"}
        for i in range(20)
    ]
    assert outcomes == expected
