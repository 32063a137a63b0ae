"""Templates: seeded defaults, CRUD, syntax checks, preview, roles and tenancy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Service, Tokens, running
from tests.fixtures.hiring import HIRING_TEMPLATE_KEYS
from tidings.config import Settings
from tidings.template.defaults import DEFAULT_TEMPLATES
from tidings.template.service import seed

HIRING_KEYS = set(HIRING_TEMPLATE_KEYS)

CONTENT: dict[str, Any] = {
    "in_app": {
        "title": "Hello {{ name }}",
        "body": "Role: {{ job_title }}",
        "action_url": "https://ats.example.test/jobs/{{ job_id }}",
    },
    "email": {
        "subject": "Hello {{ name }}",
        "html": "<p>Hello {{ name }}</p>\n<p>{{ job_title }}</p>",
        "text": "Hello {{ name }}\n{{ job_title }}",
    },
    "sms": {"text": "Hi {{ name }}: {{ job_title }}"},
    "push": {"title": "Hi {{ name }}", "body": "{{ job_title }}", "url": "/jobs/{{ job_id }}"},
    "webhook": {"event": "greeting", "who": "{{ name }}", "count": 3, "tags": ["{{ job_id }}"]},
}

TEMPLATE: dict[str, Any] = {
    "key": "greeting",
    "name": "Greeting",
    "category": "candidate",
    "priority": "high",
    "default_channels": ["in_app", "email"],
    "content": CONTENT,
}

DATA = {"name": "<b>Ada</b> & co", "job_title": "R&D <Lead>", "job_id": "j-1"}


def _default(key: str) -> dict[str, Any]:
    return next(t for t in DEFAULT_TEMPLATES if t["key"] == key)


def _loc_parts(problem: dict[str, Any]) -> list[list[str]]:
    return [[str(p) for p in e["loc"]] for e in problem["errors"]]


async def _create(
    service: Service, tokens: Tokens, body: dict[str, Any], tenant: str = "acme"
) -> dict[str, Any]:
    r = await service.client.post("/v1/templates", json=body, headers=tokens.admin(tenant))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def _keys(service: Service, tokens: Tokens, tenant: str = "acme") -> list[str]:
    r = await service.client.get(
        "/v1/templates", params={"limit": 200}, headers=tokens.service(tenant)
    )
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return [t["key"] for t in r.json()["items"]]


async def _get(service: Service, tokens: Tokens, key: str, tenant: str = "acme") -> Any:
    return await service.client.get(f"/v1/templates/{key}", headers=tokens.service(tenant))


# ---------------------------------------------------------------------- seeding


async def test_defaults_are_seeded_on_first_read(service: Service, tokens: Tokens) -> None:
    keys = await _keys(service, tokens)
    assert len(keys) == 18
    assert set(keys) == HIRING_KEYS
    one = await _get(service, tokens, "interview_scheduled")
    assert one.status_code == 200
    default = _default("interview_scheduled")
    body = one.json()
    assert body["name"] == default["name"]
    assert body["category"] == "interview"
    assert body["default_channels"] == default["default_channels"]
    assert body["content"] == default["content"]


async def test_first_read_of_one_template_seeds_too(service: Service, tokens: Tokens) -> None:
    r = await _get(service, tokens, "digest", tenant="fresh")
    assert r.status_code == 200, r.text
    assert r.json()["category"] == "digest"
    assert len(await _keys(service, tokens, "fresh")) == 18


async def test_list_pages_through_defaults_with_cursors(service: Service, tokens: Tokens) -> None:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor is not None:
            params["cursor"] = cursor
        r = await service.client.get("/v1/templates", params=params, headers=tokens.service())
        assert r.status_code == 200, r.text
        pages.append([t["key"] for t in r.json()["items"]])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 6, pages
    assert [len(p) for p in pages] == [5, 5, 5, 3]
    flat = [k for p in pages for k in p]
    assert len(flat) == len(set(flat)) and set(flat) == HIRING_KEYS
    assert flat == await _keys(service, tokens)


async def test_list_is_newest_first(service: Service, tokens: Tokens) -> None:
    await _keys(service, tokens)
    await _create(service, tokens, TEMPLATE)
    await _create(service, tokens, {**TEMPLATE, "key": "greeting.v2"})
    keys = await _keys(service, tokens)
    assert keys[:2] == ["greeting.v2", "greeting"]
    assert len(keys) == 20


async def test_template_list_rejects_bad_cursors(service: Service, tokens: Tokens) -> None:
    first = await service.client.get("/v1/templates", params={"limit": 2}, headers=tokens.service())
    cursor = first.json()["next_cursor"]
    assert cursor
    for bad, headers in (
        ("garbage", tokens.service()),
        (cursor, tokens.service("globex")),
    ):
        r = await service.client.get("/v1/templates", params={"cursor": bad}, headers=headers)
        assert r.status_code == 400, r.text
    for limit in (0, 201):
        r = await service.client.get(
            "/v1/templates", params={"limit": limit}, headers=tokens.service()
        )
        assert r.status_code == 422


async def test_seeding_happens_once_edits_and_deletions_stick(
    settings: Settings, tokens: Tokens
) -> None:
    async with running(settings, run_deliveries=False) as svc:
        assert len(await _keys(svc, tokens)) == 18
        r = await svc.client.delete("/v1/templates/job_posted", headers=tokens.admin())
        assert r.status_code == 204
        r = await svc.client.patch(
            "/v1/templates/offer_made", json={"name": "Our offer"}, headers=tokens.admin()
        )
        assert r.status_code == 200, r.text
        for _ in range(2):
            keys = await _keys(svc, tokens)
            assert "job_posted" not in keys and len(keys) == 17
            assert (await _get(svc, tokens, "job_posted")).status_code == 404
            assert (await _get(svc, tokens, "offer_made")).json()["name"] == "Our offer"
    # a new process has no memory of having seeded: the database does
    async with running(settings, run_deliveries=False) as svc:
        keys = await _keys(svc, tokens)
        assert "job_posted" not in keys and len(keys) == 17
        assert (await _get(svc, tokens, "job_posted")).status_code == 404
        assert (await _get(svc, tokens, "offer_made")).json()["name"] == "Our offer"
        # using templates (a send) does not re-seed either
        r = await svc.client.post(
            "/v1/notifications",
            headers=tokens.service(),
            json={"recipients": ["c1"], "template": "job_posted", "data": {}},
        )
        assert r.status_code == 422
        assert len(await _keys(svc, tokens)) == 17


async def test_concurrent_first_reads_seed_once(service: Service, tokens: Tokens) -> None:
    answers = await asyncio.gather(
        *(
            service.client.get(
                "/v1/templates", params={"limit": 200}, headers=tokens.service("burst")
            )
            for _ in range(8)
        )
    )
    assert [r.status_code for r in answers] == [200] * 8
    for r in answers:
        keys = [t["key"] for t in r.json()["items"]]
        assert len(keys) == 18 and set(keys) == HIRING_KEYS


async def test_seed_force_restores_edited_and_deleted_defaults(
    service: Service, tokens: Tokens
) -> None:
    client = service.client
    original = (await _get(service, tokens, "offer_made")).json()
    await _create(service, tokens, TEMPLATE)
    r = await client.put(
        "/v1/templates/offer_made",
        headers=tokens.admin(),
        json={
            "name": "Edited",
            "category": "custom",
            "default_channels": ["in_app"],
            "content": {"in_app": {"title": "edited", "body": "edited"}},
        },
    )
    assert r.status_code == 200, r.text

    deleted = await client.delete("/v1/templates/job_posted", headers=tokens.admin())
    assert deleted.status_code == 204
    # without force, a tenant seeded before keeps its edits and deletions
    async with service.ctx.db.transaction() as session:
        assert await seed(session, service.ctx, "acme", force=False) == 0
    assert (await _get(service, tokens, "offer_made")).json()["name"] == "Edited"
    assert (await _get(service, tokens, "job_posted")).status_code == 404

    async with service.ctx.db.transaction() as session:
        assert await seed(session, service.ctx, "acme", force=True) == 18
    restored = (await _get(service, tokens, "offer_made")).json()
    default = _default("offer_made")
    for field in ("name", "category", "priority", "default_channels", "content"):
        assert restored[field] == default[field] == original[field], field
    assert restored["locales"] == (default.get("locales") or {})
    assert restored["created_at"] == original["created_at"]
    job_posted = await _get(service, tokens, "job_posted")
    assert job_posted.status_code == 200
    assert job_posted.json()["content"] == _default("job_posted")["content"]
    # custom templates are left alone
    keys = await _keys(service, tokens)
    assert set(keys) == HIRING_KEYS | {"greeting"}
    assert (await _get(service, tokens, "greeting")).json()["content"] == CONTENT


async def test_seed_of_new_tenant_counts_as_its_seeding(service: Service, tokens: Tokens) -> None:
    async with service.ctx.db.transaction() as session:
        await seed(session, service.ctx, "newco", force=False)
    r = await service.client.delete("/v1/templates/digest", headers=tokens.admin("newco"))
    assert r.status_code == 204
    keys = await _keys(service, tokens, "newco")
    assert len(keys) == 17 and "digest" not in keys


# ------------------------------------------------------------------------- CRUD


async def test_create_reads_back_and_duplicate_is_409(service: Service, tokens: Tokens) -> None:
    created = await _create(service, tokens, TEMPLATE)
    for field in ("key", "name", "category", "priority", "default_channels", "content"):
        assert created[field] == TEMPLATE[field], field
    assert created["locales"] == {}
    read = await _get(service, tokens, "greeting")
    assert read.status_code == 200
    assert read.json() == created

    again = await service.client.post(
        "/v1/templates", json={**TEMPLATE, "name": "Other"}, headers=tokens.admin()
    )
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    # a seeded default's key is taken too
    clash = await service.client.post(
        "/v1/templates", json={**TEMPLATE, "key": "digest"}, headers=tokens.admin()
    )
    assert clash.status_code == 409
    assert (await _get(service, tokens, "greeting")).json()["name"] == "Greeting"
    assert (await _get(service, tokens, "digest")).json()["name"] == _default("digest")["name"]


async def test_concurrent_creates_of_one_key_are_one_201_and_409s(
    service: Service, tokens: Tokens, backend: str, request: pytest.FixtureRequest
) -> None:
    await _keys(service, tokens)
    for round_ in range(5):
        key = f"racer-{round_}"
        answers = await asyncio.gather(
            *(
                service.client.post(
                    "/v1/templates", json={**TEMPLATE, "key": key}, headers=tokens.admin()
                )
                for _ in range(8)
            ),
            return_exceptions=True,
        )
        codes = sorted(str(getattr(a, "status_code", type(a).__name__)) for a in answers)
        assert codes == ["201"] + ["409"] * 7, codes
    assert len(await _keys(service, tokens)) == 18 + 5


SYNTAX_ERRORS: list[tuple[list[str], int, str]] = [
    (["content", "email", "html"], 3, "<p>\nHello\n{{ name </p>"),
    (["content", "email", "html"], 2, "<p>\n{% if x %}</p>"),
    (["content", "in_app", "title"], 1, "Hi {{ name }"),
    (["content", "sms", "text"], 1, "{% for %}"),
    (["locales", "de", "in_app", "body"], 2, "Hallo\n{{ name | }}"),
]


async def test_syntax_error_is_422_naming_field_and_line(service: Service, tokens: Tokens) -> None:
    for field, line, source in SYNTAX_ERRORS:
        body: dict[str, Any] = {**TEMPLATE, "content": dict(CONTENT)}
        if field[0] == "locales":
            body["locales"] = {"de": {"in_app": {"title": "Hallo", "body": source}}}
        else:
            body["content"][field[1]] = {**CONTENT[field[1]], field[2]: source}
        r = await service.client.post("/v1/templates", json=body, headers=tokens.admin())
        assert r.status_code == 422, (source, r.text)
        problem = r.json()
        locs = _loc_parts(problem)
        assert any(loc[-len(field) :] == field for loc in locs), (source, locs)
        assert f"line {line}" in problem["detail"], problem["detail"]
        assert ".".join(field) in problem["detail"], problem["detail"]
    assert (await _get(service, tokens, "greeting")).status_code == 404


async def test_other_invalid_templates_are_422(service: Service, tokens: Tokens) -> None:
    no_sms = {**TEMPLATE, "default_channels": ["in_app", "sms"], "content": {"in_app": {}}}
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({**TEMPLATE, "key": "Bad Key"}, ["key"]),
        ({**TEMPLATE, "category": "Not A Slug"}, ["category"]),
        ({**TEMPLATE, "priority": "meh"}, ["priority"]),
        ({**TEMPLATE, "default_channels": ["fax"]}, ["default_channels", "0"]),
        ({**TEMPLATE, "default_channels": []}, ["default_channels"]),
        ({**TEMPLATE, "default_channels": ["in_app", "in_app"]}, ["default_channels"]),
        (no_sms, ["default_channels"]),
        ({**TEMPLATE, "content": {"fax": {"text": "x"}}}, ["content", "fax"]),
        ({**TEMPLATE, "content": {"sms": {"body": "x"}}}, ["content", "sms", "body"]),
        ({**TEMPLATE, "locales": {"not a locale": {}}}, ["locales", "not a locale", "[key]"]),
        ({**TEMPLATE, "extra": 1}, ["extra"]),
        (
            {**TEMPLATE, "content": {"in_app": {"title": "{% include 'x' %}"}}},
            ["content", "in_app", "title"],
        ),
    ]
    for body, field in cases:
        r = await service.client.post("/v1/templates", json=body, headers=tokens.admin())
        assert r.status_code == 422, (body, r.text)
        locs = _loc_parts(r.json())
        assert any(loc[-len(field) :] == field for loc in locs), (field, locs)
    assert "greeting" not in await _keys(service, tokens)


async def test_put_replaces_the_whole_template(service: Service, tokens: Tokens) -> None:
    await _create(service, tokens, {**TEMPLATE, "locales": {"de": {"sms": {"text": "Hallo"}}}})
    replacement = {
        "name": "Greeting v2",
        "category": "job",
        "default_channels": ["in_app"],
        "content": {"in_app": {"title": "New {{ name }}", "body": "new"}},
    }
    r = await service.client.put("/v1/templates/greeting", json=replacement, headers=tokens.admin())
    assert r.status_code == 200, r.text
    body = (await _get(service, tokens, "greeting")).json()
    assert body["name"] == "Greeting v2"
    assert body["category"] == "job"
    assert body["priority"] == "normal"  # not given, so back to the default
    assert body["default_channels"] == ["in_app"]
    assert body["content"] == {"in_app": {"title": "New {{ name }}", "body": "new"}}
    assert body["locales"] == {}
    assert r.json() == body

    bad = await service.client.put(
        "/v1/templates/greeting",
        json={**replacement, "content": {"in_app": {"title": "{{ x "}}},
        headers=tokens.admin(),
    )
    assert bad.status_code == 422
    assert (await _get(service, tokens, "greeting")).json() == body
    partial = await service.client.put(
        "/v1/templates/greeting", json={"name": "only a name"}, headers=tokens.admin()
    )
    assert partial.status_code == 422
    missing = await service.client.put(
        "/v1/templates/nothing-here", json=replacement, headers=tokens.admin()
    )
    assert missing.status_code == 404


async def test_patch_changes_only_given_fields(service: Service, tokens: Tokens) -> None:
    created = await _create(service, tokens, TEMPLATE)
    r = await service.client.patch(
        "/v1/templates/greeting",
        json={"name": "Renamed", "priority": "low"},
        headers=tokens.admin(),
    )
    assert r.status_code == 200, r.text
    body = (await _get(service, tokens, "greeting")).json()
    assert (body["name"], body["priority"]) == ("Renamed", "low")
    for field in ("category", "default_channels", "content", "locales", "created_at"):
        assert body[field] == created[field], field

    r = await service.client.patch(
        "/v1/templates/greeting",
        json={"locales": {"de": {"in_app": {"title": "Hallo {{ name }}"}}}},
        headers=tokens.admin(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["locales"] == {"de": {"in_app": {"title": "Hallo {{ name }}"}}}
    assert r.json()["content"] == CONTENT

    # a change that leaves a default channel without content is refused
    r = await service.client.patch(
        "/v1/templates/greeting", json={"default_channels": ["sms", "push"]}, headers=tokens.admin()
    )
    assert r.status_code == 200, r.text
    r = await service.client.patch(
        "/v1/templates/greeting",
        json={"content": {"in_app": {"title": "only in-app"}}},
        headers=tokens.admin(),
    )
    assert r.status_code == 422
    assert any("default_channels" in loc for loc in _loc_parts(r.json()))
    r = await service.client.patch(
        "/v1/templates/greeting",
        json={"content": {"sms": {"text": "{{ broken"}}},
        headers=tokens.admin(),
    )
    assert r.status_code == 422
    assert (await _get(service, tokens, "greeting")).json()["content"] == CONTENT
    r = await service.client.patch(
        "/v1/templates/greeting", json={"key": "renamed"}, headers=tokens.admin()
    )
    assert r.status_code == 422
    r = await service.client.patch("/v1/templates/nothing-here", json={}, headers=tokens.admin())
    assert r.status_code == 404


async def test_delete_then_404(service: Service, tokens: Tokens) -> None:
    await _create(service, tokens, TEMPLATE)
    r = await service.client.delete("/v1/templates/greeting", headers=tokens.admin())
    assert r.status_code == 204 and r.content == b""
    assert (await _get(service, tokens, "greeting")).status_code == 404
    again = await service.client.delete("/v1/templates/greeting", headers=tokens.admin())
    assert again.status_code == 404
    preview = await service.client.post(
        "/v1/templates/greeting/preview", json={"data": DATA}, headers=tokens.service()
    )
    assert preview.status_code == 404
    assert "greeting" not in await _keys(service, tokens)
    # the key is free again
    await _create(service, tokens, TEMPLATE)


# ---------------------------------------------------------------------- preview


async def test_preview_renders_every_channel(service: Service, tokens: Tokens) -> None:
    await _create(service, tokens, TEMPLATE)
    r = await service.client.post(
        "/v1/templates/greeting/preview", json={"data": DATA}, headers=tokens.service()
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["key"] == "greeting" and body["locale"] is None
    content = body["content"]
    assert content["in_app"] == {
        "title": "Hello <b>Ada</b> & co",
        "body": "Role: R&D <Lead>",
        "action_url": "https://ats.example.test/jobs/j-1",
    }
    assert content["email"] == {
        "subject": "Hello <b>Ada</b> & co",
        "html": "<p>Hello &lt;b&gt;Ada&lt;/b&gt; &amp; co</p>\n<p>R&amp;D &lt;Lead&gt;</p>",
        "text": "Hello <b>Ada</b> & co\nR&D <Lead>",
    }
    assert content["sms"] == {"text": "Hi <b>Ada</b> & co: R&D <Lead>"}
    assert content["push"] == {
        "title": "Hi <b>Ada</b> & co",
        "body": "R&D <Lead>",
        "url": "/jobs/j-1",
    }
    assert content["webhook"] == {
        "event": "greeting",
        "who": "<b>Ada</b> & co",
        "count": 3,
        "tags": ["j-1"],
    }


async def test_preview_of_a_seeded_default(service: Service, tokens: Tokens) -> None:
    r = await service.client.post(
        "/v1/templates/system_alert/preview",
        json={"data": {"alert_title": "Disk full", "alert_message": "Volume <data> at 99%"}},
        headers=tokens.service(),
    )
    assert r.status_code == 200, r.text
    content = r.json()["content"]
    assert content["in_app"]["title"] == "System alert: Disk full"
    assert content["in_app"]["body"] == "Volume <data> at 99%"
    assert content["email"]["subject"] == "[ALERT] Disk full"
    assert "Volume &lt;data&gt; at 99%" in content["email"]["html"]
    assert "<data>" not in content["email"]["html"]


async def test_preview_names_missing_variables(service: Service, tokens: Tokens) -> None:
    await _create(service, tokens, TEMPLATE)
    r = await service.client.post(
        "/v1/templates/greeting/preview",
        json={"data": {"name": "Ada"}},
        headers=tokens.service(),
    )
    assert r.status_code == 422, r.text
    problem = r.json()
    named = problem["detail"].rsplit(":", 1)[-1]
    assert {n.strip() for n in named.split(",")} == {"job_id", "job_title"}, problem["detail"]
    assert any(loc[-1] == "data" for loc in _loc_parts(problem))

    r = await service.client.post(
        "/v1/templates/system_alert/preview", json={"data": {}}, headers=tokens.service()
    )
    assert r.status_code == 422
    assert "alert_title" in r.json()["detail"] and "alert_message" in r.json()["detail"]


async def test_invalid_preview_requests_are_422(service: Service, tokens: Tokens) -> None:
    bodies: list[tuple[dict[str, Any], list[str]]] = [
        ({"data": {"recipient": "x"}}, ["body", "data"]),
        ({"data": {"inbox_url": "x"}}, ["body", "data"]),
        ({"data": []}, ["body", "data"]),
        ({"data": {}, "locale": "not a locale"}, ["body", "locale"]),
        ({"data": {}, "extra": 1}, ["body", "extra"]),
    ]
    for body, loc in bodies:
        r = await service.client.post(
            "/v1/templates/digest/preview", json=body, headers=tokens.service()
        )
        assert r.status_code == 422, (body, r.text)
        assert any(parts[:2] == loc for parts in _loc_parts(r.json())), (body, r.json())


async def test_preview_picks_localized_content(service: Service, tokens: Tokens) -> None:
    await _create(
        service,
        tokens,
        {
            **TEMPLATE,
            "locales": {
                "de": {
                    "in_app": {"title": "Hallo {{ name }}", "body": "Stelle: {{ job_title }}"},
                    "sms": {"text": "Hallo {{ name }}"},
                },
                "de-CH": {"sms": {"text": "Grüezi {{ name }}"}},
            },
        },
    )

    async def preview(locale: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"data": {"name": "Ada", "job_title": "Dev", "job_id": "1"}}
        if locale is not None:
            payload["locale"] = locale
        r = await service.client.post(
            "/v1/templates/greeting/preview", json=payload, headers=tokens.service()
        )
        assert r.status_code == 200, r.text
        assert r.json()["locale"] == locale
        result: dict[str, Any] = r.json()["content"]
        return result

    austrian = await preview("de-AT")
    assert austrian["in_app"] == {"title": "Hallo Ada", "body": "Stelle: Dev"}
    assert austrian["sms"] == {"text": "Hallo Ada"}
    # channels the translation leaves out keep the default content
    assert austrian["email"]["subject"] == "Hello Ada"
    assert (await preview("de"))["in_app"]["title"] == "Hallo Ada"
    swiss = await preview("de-CH")
    assert swiss["sms"] == {"text": "Grüezi Ada"}
    assert swiss["in_app"]["title"] == "Hallo Ada"
    assert (await preview("fr-FR"))["in_app"]["title"] == "Hello Ada"
    assert (await preview(None))["sms"] == {"text": "Hi Ada: Dev"}


# -------------------------------------------------------------- roles, tenancy


async def test_only_admin_writes_service_reads_and_previews(
    service: Service, tokens: Tokens
) -> None:
    client = service.client
    await _create(service, tokens, TEMPLATE)
    svc = tokens.service()
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/v1/templates", {**TEMPLATE, "key": "by-service"}),
        ("PUT", "/v1/templates/greeting", {k: v for k, v in TEMPLATE.items() if k != "key"}),
        ("PATCH", "/v1/templates/greeting", {"name": "by service"}),
        ("DELETE", "/v1/templates/greeting", None),
        ("PATCH", "/v1/templates/digest", {"name": "by service"}),
        ("DELETE", "/v1/templates/digest", None),
    ]
    for method, path, body in writes:
        r = await client.request(method, path, json=body, headers=svc)
        assert r.status_code == 403, (method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        r = await client.request(method, path, json=body, headers=tokens.user("cand-1"))
        assert r.status_code == 403, (method, path, r.text)
        r = await client.request(method, path, json=body)
        assert r.status_code == 401, (method, path, r.text)

    assert (await client.get("/v1/templates", headers=svc)).status_code == 200
    read = await client.get("/v1/templates/greeting", headers=svc)
    assert read.status_code == 200 and read.json()["name"] == "Greeting"
    preview = await client.post("/v1/templates/greeting/preview", json={"data": DATA}, headers=svc)
    assert preview.status_code == 200
    admin_preview = await client.post(
        "/v1/templates/greeting/preview", json={"data": DATA}, headers=tokens.admin()
    )
    assert admin_preview.status_code == 200
    assert (await client.get("/v1/templates/by-service", headers=svc)).status_code == 404
    assert (await client.get("/v1/templates/digest", headers=svc)).json()["name"] == _default(
        "digest"
    )["name"]

    user = tokens.user("cand-1")
    for method, path, body in (
        ("GET", "/v1/templates", None),
        ("GET", "/v1/templates/greeting", None),
        ("POST", "/v1/templates/greeting/preview", {"data": DATA}),
    ):
        r = await client.request(method, path, json=body, headers=user)
        assert r.status_code == 403, (method, path, r.text)
        assert (await client.request(method, path, json=body)).status_code == 401


async def test_tenants_do_not_see_each_others_templates(service: Service, tokens: Tokens) -> None:
    client = service.client
    await _create(service, tokens, TEMPLATE, tenant="acme")
    globex = tokens.admin("globex")
    assert (await client.get("/v1/templates/greeting", headers=globex)).status_code == 404
    r = await client.patch("/v1/templates/greeting", json={"name": "x"}, headers=globex)
    assert r.status_code == 404
    replacement = {k: v for k, v in TEMPLATE.items() if k != "key"}
    r = await client.put("/v1/templates/greeting", json=replacement, headers=globex)
    assert r.status_code == 404
    assert (await client.delete("/v1/templates/greeting", headers=globex)).status_code == 404
    r = await client.post(
        "/v1/templates/greeting/preview", json={"data": DATA}, headers=tokens.service("globex")
    )
    assert r.status_code == 404
    keys = await _keys(service, tokens, "globex")
    assert "greeting" not in keys and set(keys) == HIRING_KEYS

    # each tenant edits its own copy of a default and its own template of the same key
    await client.patch("/v1/templates/digest", json={"name": "Globex digest"}, headers=globex)
    await _create(service, tokens, {**TEMPLATE, "name": "Globex greeting"}, tenant="globex")
    acme = (await _get(service, tokens, "greeting")).json()
    assert acme["name"] == "Greeting"
    assert (await _get(service, tokens, "digest")).json()["name"] == _default("digest")["name"]
    assert (await _get(service, tokens, "greeting", "globex")).json()["name"] == "Globex greeting"
