"""The seeded hiring templates: complete, valid, renderable, and stable (golden files).

Regenerate the golden files after an intended wording change with
``TIDINGS_UPDATE_GOLDEN=1 pytest tests/unit/template/test_defaults.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.hiring import HIRING_TEMPLATE_KEYS
from tidings.template.defaults import (
    ALWAYS_AVAILABLE_EXAMPLE,
    DEFAULT_TEMPLATES,
    TEMPLATE_VARIABLES_EXAMPLE,
)
from tidings.template.rendering import (
    CHANNEL_FIELDS,
    MissingVariables,
    check_content,
    render_content,
)

EXPECTED_KEYS = list(HIRING_TEMPLATE_KEYS)
CATEGORIES = {
    "interview",
    "application",
    "offer",
    "resume",
    "candidate",
    "job",
    "evaluation",
    "task",
    "message",
    "system",
    "digest",
}
PRIORITIES = {"low", "normal", "high", "urgent"}
TEMPLATE_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
HTML_TAG = re.compile(r"<[a-zA-Z/!]")
TIMESTAMPS = {"interview_time", "previous_interview_time", "respond_by", "due_at", "occurred_at"}

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden" / "templates"
GOLDEN_TIMEZONE = "Europe/Berlin"
# Fixed here rather than taken from the examples module, so a docs tweak there cannot
# silently change what the golden files pin down.
GOLDEN_CONTEXT: dict[str, Any] = {
    "recipient": {
        "id": "user-1042",
        "name": "Jordan Rivera",
        "email": "jordan.rivera@example.com",
        "locale": "en",
        "timezone": GOLDEN_TIMEZONE,
        "data": {},
    },
    "tenant": {"id": "acme"},
    "notification": {
        "id": "01933b6e-7a40-7cc2-9a6f-3c1b2f0d9e11",
        "category": "general",
        "priority": "normal",
    },
    "unsubscribe_url": "https://notify.example.com/v1/unsubscribe/golden-token",
    "inbox_url": "https://notify.example.com/inbox",
}

TEMPLATES = {template["key"]: template for template in DEFAULT_TEMPLATES}


def _render(
    key: str, data: dict[str, Any], context: dict[str, Any] | None = None
) -> dict[str, Any]:
    variables = {**data, **(context or GOLDEN_CONTEXT)}
    return render_content(TEMPLATES[key]["content"], variables, timezone=GOLDEN_TIMEZONE)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


# ------------------------------------------------------------------------- catalogue


def test_exactly_the_specified_keys_in_order() -> None:
    assert [template["key"] for template in DEFAULT_TEMPLATES] == EXPECTED_KEYS


@pytest.mark.parametrize("key", EXPECTED_KEYS)
def test_template_record_is_well_formed(key: str) -> None:
    template = TEMPLATES[key]

    assert set(template) == {"key", "name", "category", "priority", "default_channels", "content"}
    assert TEMPLATE_KEY.match(key)
    assert template["name"].strip()
    assert template["category"] in CATEGORIES
    assert template["priority"] in PRIORITIES
    channels = template["default_channels"]
    assert channels
    assert len(set(channels)) == len(channels)
    assert set(channels) <= {"in_app", "email", "sms", "push"}
    # A default channel without content would fail every send of the template.
    assert set(channels) <= set(template["content"])
    assert {"in_app", "email"} <= set(template["content"])
    for channel, fields in template["content"].items():
        assert set(fields) == set(CHANNEL_FIELDS[channel]), (key, channel)


def test_priorities_follow_the_domain() -> None:
    assert TEMPLATES["system_alert"]["priority"] == "urgent"
    assert TEMPLATES["digest"]["priority"] == "low"
    assert TEMPLATES["offer_made"]["priority"] == "high"
    assert all(TEMPLATES[k]["priority"] == "high" for k in EXPECTED_KEYS if k.startswith("interv"))


@pytest.mark.parametrize("key", EXPECTED_KEYS)
def test_template_passes_check_content(key: str) -> None:
    assert check_content(TEMPLATES[key]["content"]) == []


def test_examples_cover_every_template_and_avoid_reserved_names() -> None:
    assert set(TEMPLATE_VARIABLES_EXAMPLE) == set(EXPECTED_KEYS)
    for data in TEMPLATE_VARIABLES_EXAMPLE.values():
        # Sends refuse data keys that shadow the variables Tidings adds.
        assert not set(data) & set(ALWAYS_AVAILABLE_EXAMPLE)


# ------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("key", EXPECTED_KEYS)
def test_renders_with_its_example_variables(key: str) -> None:
    rendered = _render(key, TEMPLATE_VARIABLES_EXAMPLE[key], ALWAYS_AVAILABLE_EXAMPLE)

    assert rendered["in_app"]["title"].strip()
    assert rendered["in_app"]["body"].strip()
    assert rendered["in_app"]["action_url"].startswith("https://")
    assert rendered["email"]["subject"].strip()
    assert "\n" not in rendered["email"]["subject"]
    for text in _strings(rendered):
        assert "None" not in text, key
        assert "{{" not in text
        assert "{%" not in text


@pytest.mark.parametrize("key", EXPECTED_KEYS)
def test_every_example_variable_is_used_or_reported(key: str) -> None:
    """Dropping a variable either leaves an optional part out or names exactly that one."""
    example = TEMPLATE_VARIABLES_EXAMPLE[key]
    for name in example:
        data = {k: v for k, v in example.items() if k != name}
        missing: list[str] = []
        try:
            _render(key, data)
        except MissingVariables as exc:
            missing = exc.names
        assert missing in ([], [name]), (key, name)


@pytest.mark.parametrize("key", EXPECTED_KEYS)
def test_plain_channels_carry_no_html(key: str) -> None:
    rendered = _render(key, TEMPLATE_VARIABLES_EXAMPLE[key])

    texts = _strings({ch: fields for ch, fields in rendered.items() if ch != "email"})
    texts += [rendered["email"]["subject"], rendered["email"]["text"]]
    for text in texts:
        assert not HTML_TAG.search(text), (key, text)


@pytest.mark.parametrize("key", EXPECTED_KEYS)
def test_email_html_is_a_full_document_with_an_unsubscribe_link(key: str) -> None:
    html = _render(key, TEMPLATE_VARIABLES_EXAMPLE[key])["email"]["html"]

    assert html.startswith("<!DOCTYPE html>")
    assert 'href="https://notify.example.com/v1/unsubscribe/golden-token"' in html
    assert 'href="https://notify.example.com/inbox"' in html


@pytest.mark.parametrize("key", EXPECTED_KEYS)
def test_email_html_escapes_every_string_variable(key: str) -> None:
    evil = "<i>x</i>"
    data = {
        name: evil
        if isinstance(value, str) and name not in TIMESTAMPS and not value.startswith("http")
        else value
        for name, value in TEMPLATE_VARIABLES_EXAMPLE[key].items()
    }

    rendered = _render(key, data)

    assert evil not in rendered["email"]["html"]


@pytest.mark.parametrize(
    "key",
    ["interview_scheduled", "interview_reminder", "interview_rescheduled", "interview_cancelled"],
)
def test_interview_templates_need_only_what_the_reminder_api_carries(key: str) -> None:
    data = {
        "interview_time": "2025-12-01T09:00:00Z",
        "duration_minutes": 30,
        "location": "Room 4.12",
    }

    rendered = _render(key, data)

    assert "10:00 CET" in rendered["email"]["text"]
    assert rendered["in_app"]["action_url"] == GOLDEN_CONTEXT["inbox_url"]


def test_greeting_works_without_a_recipient_name() -> None:
    context = {**GOLDEN_CONTEXT, "recipient": {**GOLDEN_CONTEXT["recipient"], "name": None}}

    rendered = _render("job_posted", TEMPLATE_VARIABLES_EXAMPLE["job_posted"], context)

    assert rendered["email"]["text"].startswith("Hi there,")


def test_digest_groups_items_by_category() -> None:
    text = _render("digest", TEMPLATE_VARIABLES_EXAMPLE["digest"])["email"]["text"]

    headings = [line for line in text.splitlines() if line in {"Application", "Interview", "Task"}]
    assert headings == ["Application", "Interview", "Task"]
    assert text.index("Application received") < text.index("Interview\n")


# ---------------------------------------------------------------------------- goldens


def _check_golden(key: str, rendered: dict[str, Any]) -> None:
    path = GOLDEN_DIR / f"{key}.json"
    serialized = json.dumps(rendered, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("TIDINGS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(serialized, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; run with TIDINGS_UPDATE_GOLDEN=1 to create it")
    assert json.loads(path.read_text(encoding="utf-8")) == rendered, (
        f"{key} renders differently from {path}; if intended, rerun with TIDINGS_UPDATE_GOLDEN=1"
    )


@pytest.mark.parametrize("key", EXPECTED_KEYS)
def test_rendering_matches_the_golden_file(key: str) -> None:
    _check_golden(key, _render(key, TEMPLATE_VARIABLES_EXAMPLE[key]))
