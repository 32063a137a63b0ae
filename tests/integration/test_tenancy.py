"""Tenant and user isolation (SPEC 5 and STYLE rule 6): every /v1 endpoint refuses others' ids.

Tenant "acme" owns a recipient, a custom template, two sends (one delivered at once to an
address, so deliveries exist; one held by ``send_at``, so a cancel would change it) and an
inbox item of user "cand-1". Tenant "globex", and acme's other user "cand-2", then try
everything; afterwards acme's data must be exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Service, Tokens
from tests.integration.helpers import deliveries, send, settled

RECIPIENT = "cand-1"
OTHER_USER = "cand-2"
TOPIC = "acme-finalists"
TEMPLATE = "acme-offer-call"
TEMPLATE_BODY: dict[str, Any] = {
    "name": "Offer call",
    "category": "offer",
    "priority": "high",
    "default_channels": ["in_app", "email"],
    "content": {
        "in_app": {"title": "Call about {{ job_title }}", "body": "Hello {{ recipient.name }}"},
        "email": {"subject": "Offer: {{ job_title }}", "text": "Hello {{ recipient.name }}"},
    },
}


@dataclass(frozen=True)
class Acme:
    """The ids acme owns, and what acme itself sees of them before anyone else tries."""

    recipient: str
    topic: str
    template: str
    send: str
    scheduled_send: str
    delivery: str
    scheduled_delivery: str
    notification: str
    snapshot: dict[str, Any]

    @property
    def ids(self) -> dict[str, str]:
        return {
            "recipient": self.recipient,
            "topic": self.topic,
            "template": self.template,
            "send": self.send,
            "scheduled_send": self.scheduled_send,
            "delivery": self.delivery,
            "scheduled_delivery": self.scheduled_delivery,
            "notification": self.notification,
        }


async def _get(service: Service, path: str, headers: dict[str, str], **params: Any) -> Any:
    r = await service.client.get(path, params=params, headers=headers)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


async def _snapshot(service: Service, tokens: Tokens, acme: dict[str, str]) -> dict[str, Any]:
    """Everything acme can see of its own data, as acme sees it."""
    service_h, admin_h, user_h = tokens.service(), tokens.admin(), tokens.user(RECIPIENT)
    return {
        "recipient": await _get(service, f"/v1/recipients/{acme['recipient']}", service_h),
        "export": await _get(service, f"/v1/recipients/{acme['recipient']}/export", service_h),
        "topics": await _get(service, f"/v1/recipients/{acme['recipient']}/topics", service_h),
        "subscribers": await _get(service, f"/v1/topics/{acme['topic']}/subscribers", service_h),
        "template": await _get(service, f"/v1/templates/{acme['template']}", service_h),
        "send": await _get(service, f"/v1/sends/{acme['send']}", service_h),
        "scheduled_send": await _get(service, f"/v1/sends/{acme['scheduled_send']}", service_h),
        "deliveries": await _get(service, "/v1/deliveries", admin_h),
        "item": await _get(service, f"/v1/me/notifications/{acme['notification']}", user_h),
        "inbox": await _get(service, "/v1/me/notifications", user_h),
        "unread": await _get(service, "/v1/me/notifications/unread-count", user_h),
    }


@pytest.fixture
async def acme(service: Service, tokens: Tokens) -> Acme:
    client = service.client
    r = await client.put(
        f"/v1/recipients/{RECIPIENT}",
        json={"name": "Ada", "email": "ada@example.test"},
        headers=tokens.service(),
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/topics/{TOPIC}/subscribers",
        json={"recipient_ids": [RECIPIENT]},
        headers=tokens.service(),
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/v1/templates", json={"key": TEMPLATE, **TEMPLATE_BODY}, headers=tokens.admin()
    )
    assert r.status_code == 201, r.text
    now = await send(
        client, tokens, recipients=[RECIPIENT], template=TEMPLATE, data={"job_title": "Engineer"}
    )
    later = await send(
        client,
        tokens,
        recipients=[RECIPIENT],
        title="Tomorrow",
        body="Held by send_at",
        channels=["in_app", "email"],
        send_at=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
    )
    await settled(client, tokens, now["id"])
    email = await deliveries(client, tokens, send_id=now["id"], channel="email")
    held = await deliveries(client, tokens, send_id=later["id"], channel="email")
    assert [d["status"] for d in email] == ["sent"], email
    assert [d["status"] for d in held] == ["scheduled"], held
    ids = {
        "recipient": RECIPIENT,
        "topic": TOPIC,
        "template": TEMPLATE,
        "send": now["id"],
        "scheduled_send": later["id"],
        "delivery": email[0]["id"],
        "scheduled_delivery": held[0]["id"],
        "notification": now["notifications"][0]["id"],
    }
    snapshot = await _snapshot(service, tokens, ids)
    assert snapshot["item"]["read"] is False
    assert snapshot["scheduled_send"]["status"] == "scheduled"
    assert [s["recipient_id"] for s in snapshot["subscribers"]["items"]] == [RECIPIENT]
    return Acme(snapshot=snapshot, **ids)


async def _assert_acme_unchanged(service: Service, tokens: Tokens, acme: Acme) -> None:
    after = await _snapshot(service, tokens, acme.ids)
    for key, before in acme.snapshot.items():
        assert after[key] == before, f"acme's {key} changed"
    assert after["item"]["read"] is False
    assert after["scheduled_send"]["status"] != "cancelled"


# ids of the same shapes that no tenant has
NOWHERE = {
    "recipient": "nobody-at-all",
    "topic": "no-such-topic",
    "template": "no-such-template",
    "send": "00000000-0000-7000-8000-000000000001",
    "scheduled_send": "00000000-0000-7000-8000-000000000002",
    "delivery": "00000000-0000-7000-8000-000000000003",
    "scheduled_delivery": "00000000-0000-7000-8000-000000000004",
    "notification": "00000000-0000-7000-8000-000000000005",
}


def _masked(detail: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        detail = detail.replace(value, f"<{name}>")
    return detail


# (method, path, body, admin only): every operation that takes an id acme owns.
ID_OPERATIONS: list[tuple[str, str, dict[str, Any] | None, bool]] = [
    ("GET", "/v1/recipients/{recipient}", None, False),
    ("GET", "/v1/recipients/{recipient}/export", None, False),
    ("GET", "/v1/recipients/{recipient}/topics", None, False),
    ("DELETE", "/v1/recipients/{recipient}", None, False),
    ("GET", "/v1/templates/{template}", None, False),
    ("PUT", "/v1/templates/{template}", {**TEMPLATE_BODY, "name": "Hijacked"}, True),
    ("PATCH", "/v1/templates/{template}", {"name": "Hijacked"}, True),
    ("DELETE", "/v1/templates/{template}", None, True),
    ("POST", "/v1/templates/{template}/preview", {"data": {"job_title": "x"}}, False),
    ("GET", "/v1/sends/{send}", None, False),
    ("DELETE", "/v1/sends/{send}", None, False),
    ("GET", "/v1/sends/{scheduled_send}", None, False),
    ("DELETE", "/v1/sends/{scheduled_send}", None, False),
    ("POST", "/v1/deliveries/{delivery}/retry", None, True),
    ("POST", "/v1/deliveries/{scheduled_delivery}/retry", None, True),
]


@pytest.mark.parametrize("role", ["service", "admin"])
async def test_other_tenant_gets_404_for_every_id(
    service: Service, tokens: Tokens, acme: Acme, role: str, subtests: pytest.Subtests
) -> None:
    headers = tokens.service("globex") if role == "service" else tokens.admin("globex")
    for method, template, body, admin_only in ID_OPERATIONS:
        path = template.format(**acme.ids)
        with subtests.test(msg=f"{method} {template}"):
            r = await service.client.request(method, path, json=body, headers=headers)
            # a role check before the lookup is no leak either: it answers without looking
            expected = 403 if admin_only and role == "service" else 404
            assert r.status_code == expected, r.text
            assert r.headers["content-type"] == "application/problem+json"
            # indistinguishable from an id that exists nowhere: nothing leaks
            unknown = await service.client.request(
                method, template.format(**NOWHERE), json=body, headers=headers
            )
            assert unknown.status_code == expected
            assert _masked(r.json()["detail"], acme.ids) == _masked(
                unknown.json()["detail"], NOWHERE
            )
    await _assert_acme_unchanged(service, tokens, acme)


# (path, query, who may list): the lists, with filters that name acme's rows.
LISTS: list[tuple[str, dict[str, str], str]] = [
    ("/v1/recipients", {}, "service"),
    ("/v1/topics/{topic}/subscribers", {}, "service"),
    ("/v1/templates", {}, "service"),
    ("/v1/deliveries", {}, "admin"),
    ("/v1/deliveries", {"send_id": "{send}"}, "admin"),
    ("/v1/deliveries", {"send_id": "{scheduled_send}"}, "admin"),
    ("/v1/deliveries", {"recipient_id": "{recipient}"}, "admin"),
]


async def test_other_tenant_lists_never_show_acme_rows(
    service: Service, tokens: Tokens, acme: Acme, subtests: pytest.Subtests
) -> None:
    acme_values = set(acme.ids.values())
    for path, query, who in LISTS:
        params = {k: v.format(**acme.ids) for k, v in query.items()}
        headers = tokens.admin("globex") if who == "admin" else tokens.service("globex")
        with subtests.test(msg=f"{path} {params}"):
            r = await service.client.get(path.format(**acme.ids), params=params, headers=headers)
            assert r.status_code == 200, r.text
            rows = r.json()["items"]
            keys = {row.get("id") or row.get("key") or row.get("recipient_id") for row in rows}
            assert not keys & acme_values, rows
            # rows that name an acme id in another field (a delivery's send_id, ...)
            assert not any(
                row.get(f) in acme_values for row in rows for f in ("send_id", "notification_id")
            )
            if path != "/v1/templates":  # globex has its own seeded templates
                assert rows == []
    await _assert_acme_unchanged(service, tokens, acme)


async def test_other_tenant_topic_writes_touch_only_its_own_topic(
    service: Service, tokens: Tokens, acme: Acme
) -> None:
    path, body = f"/v1/topics/{TOPIC}/subscribers", {"recipient_ids": [RECIPIENT]}
    r = await service.client.request("DELETE", path, json=body, headers=tokens.service("globex"))
    assert (r.status_code, r.json()) == (200, {"removed": 0})
    await _assert_acme_unchanged(service, tokens, acme)
    # the same topic name and recipient id in globex are globex's own
    r = await service.client.post(path, json=body, headers=tokens.service("globex"))
    assert (r.status_code, r.json()) == (200, {"added": 1})
    r = await service.client.request("DELETE", path, json=body, headers=tokens.service("globex"))
    assert (r.status_code, r.json()) == (200, {"removed": 1})
    await _assert_acme_unchanged(service, tokens, acme)


async def test_other_tenant_may_use_the_same_template_key(
    service: Service, tokens: Tokens, acme: Acme
) -> None:
    body = {**TEMPLATE_BODY, "key": TEMPLATE, "name": "Globex's own"}
    r = await service.client.post("/v1/templates", json=body, headers=tokens.admin("globex"))
    assert r.status_code == 201, r.text
    r = await service.client.get(f"/v1/templates/{TEMPLATE}", headers=tokens.service("globex"))
    assert r.json()["name"] == "Globex's own"
    await _assert_acme_unchanged(service, tokens, acme)


# every inbox operation that takes a notification id
INBOX_ID_OPERATIONS = [
    ("GET", "/v1/me/notifications/{notification}"),
    ("POST", "/v1/me/notifications/{notification}/read"),
    ("POST", "/v1/me/notifications/{notification}/unread"),
    ("DELETE", "/v1/me/notifications/{notification}"),
    # twice: marking read after an attempted unread, archive after read
    ("POST", "/v1/me/notifications/{notification}/read"),
    ("DELETE", "/v1/me/notifications/{notification}"),
]


@pytest.mark.parametrize(
    ("sub", "tenant"),
    [
        pytest.param(RECIPIENT, "globex", id="same-sub-other-tenant"),
        pytest.param(OTHER_USER, "acme", id="other-user-same-tenant"),
    ],
)
async def test_other_users_never_reach_the_inbox_item(
    service: Service,
    tokens: Tokens,
    acme: Acme,
    sub: str,
    tenant: str,
    subtests: pytest.Subtests,
) -> None:
    headers = tokens.user(sub, tenant)
    client = service.client
    for method, template in INBOX_ID_OPERATIONS:
        with subtests.test(msg=f"{method} {template}"):
            r = await client.request(method, template.format(**acme.ids), headers=headers)
            assert r.status_code == 404, r.text
            assert r.headers["content-type"] == "application/problem+json"
    with subtests.test(msg="bulk read of the foreign id"):
        r = await client.post(
            "/v1/me/notifications/read", json={"ids": [acme.notification]}, headers=headers
        )
        assert (r.status_code, r.json()) == (200, {"updated": 0})
    with subtests.test(msg="read-all"):
        r = await client.post("/v1/me/notifications/read-all", headers=headers)
        assert (r.status_code, r.json()) == (200, {"updated": 0})
    with subtests.test(msg="lists and counts are empty"):
        inbox = await _get(service, "/v1/me/notifications", headers)
        assert inbox == {"items": [], "next_cursor": None}
        assert await _get(service, "/v1/me/notifications/unread-count", headers) == {"count": 0}
        summary = await _get(service, "/v1/me/notifications/summary", headers)
        assert (summary["total"], summary["unread"]) == (0, 0)
    await _assert_acme_unchanged(service, tokens, acme)
