"""Preference rules: merging a PUT, the effective view, resolution, quiet hours, digests."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tidings.preference.rules import (
    Digest,
    Hold,
    Keep,
    PreferencesTooLarge,
    Resolution,
    Suppress,
    decide,
    digest_key,
    effective,
    local_instant,
    merge_update,
    next_digest,
    normalize,
    quiet_until,
    read_preferences,
    resolve_switch,
)
from tidings.preference.schemas import MAX_KEYS, PreferencesUpdate

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def at(text: str) -> datetime:
    """A UTC instant written as ``YYYY-MM-DD HH:MM``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


BER = "Europe/Berlin"
NYC = "America/New_York"


def put(body: dict[str, Any]) -> PreferencesUpdate:
    return PreferencesUpdate.model_validate(body)


def merged(stored: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return merge_update(stored, put(body))


# --- the PUT body -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"channels": {"email": "true"}},
        {"channels": {"email": 1}},
        {"channels": {"webhook": False}},
        {"channels": {"fax": True}},
        {"categories": {"Resume": False}},
        {"categories": {"": False}},
        {"categories": {"a" * 65: False}},
        {"categories": {"résumé": False}},
        {"categories": {"resume": "no"}},
        {"matrix": {"interview": {"fax": True}}},
        {"matrix": {"interview": {"sms": 0}}},
        {"matrix": {"Interview": {"sms": True}}},
        {"matrix": {"interview": True}},
        {"quiet_hours": {"start": "22:00", "end": "22:00"}},
        {"quiet_hours": {"start": "24:00", "end": "07:00"}},
        {"quiet_hours": {"start": "7:00", "end": "22:00"}},
        {"quiet_hours": {"start": "22:00:00", "end": "07:00"}},
        {"quiet_hours": {"start": "22:00"}},
        {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}},
        {"quiet_hours": {"start": "22:00", "end": "07:00", "extra": 1}},
        {"digest": {"hour": 9}},
        {"digest": {"mode": "hourly"}},
        {"digest": {"mode": "daily", "hour": 24}},
        {"digest": {"mode": "daily", "hour": -1}},
        {"digest": {"mode": "daily", "hour": "8"}},
        {"digest": {"mode": "daily", "hour": True}},
        {"digest": {"mode": "weekly", "weekday": "monday"}},
        {"unknown": 1},
        {"categories": {f"c{i}": True for i in range(MAX_KEYS + 1)}},
        {"matrix": {f"c{i}": {"sms": True} for i in range(MAX_KEYS + 1)}},
    ],
)
def test_bad_bodies_are_rejected(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        put(body)


def test_the_put_body_has_a_json_schema() -> None:
    schema = PreferencesUpdate.model_json_schema()
    assert set(schema["properties"]) == {
        "channels",
        "categories",
        "matrix",
        "quiet_hours",
        "digest",
    }
    assert schema["additionalProperties"] is False


def test_json_body_is_accepted() -> None:
    body = (
        '{"channels": {"email": true, "sms": false, "push": true, "in_app": true},'
        ' "categories": {"resume": false}, "matrix": {"interview": {"sms": true}},'
        ' "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},'
        ' "digest": {"mode": "weekly", "hour": 8, "weekday": "mon"}}'
    )
    update = PreferencesUpdate.model_validate_json(body)
    assert merge_update({}, update) == {
        "channels": {"email": True, "sms": False, "push": True, "in_app": True},
        "categories": {"resume": False},
        "matrix": {"interview": {"sms": True}},
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
        "digest": {"mode": "weekly", "hour": 8, "weekday": "mon"},
    }


def test_unknown_categories_are_accepted() -> None:
    assert merged({}, {"categories": {"never.seen-before_1": False}}) == {
        "categories": {"never.seen-before_1": False}
    }


# --- merge_update: omitted keeps, null removes ----------------------------------------------

STORED: dict[str, Any] = {
    "channels": {"email": True, "sms": False},
    "categories": {"resume": False, "offer": True},
    "matrix": {"interview": {"sms": True, "push": False}, "task": {"email": False}},
    "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
    "digest": {"mode": "daily", "hour": 8, "weekday": "mon"},
}


def without(key: str, **changes: Any) -> dict[str, Any]:
    doc = {k: v for k, v in STORED.items() if k != key}
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, STORED),
        ({"channels": {}}, STORED),
        (
            {"channels": {"push": False}},
            without("channels", channels={"email": True, "sms": False, "push": False}),
        ),
        ({"channels": {"sms": None}}, without("channels", channels={"email": True})),
        ({"channels": {"sms": None, "email": None}}, without("channels")),
        ({"channels": None}, without("channels")),
        ({"categories": {"resume": None}}, without("categories", categories={"offer": True})),
        (
            {"categories": {"resume": True, "job": False}},
            without("categories", categories={"job": False, "offer": True, "resume": True}),
        ),
        ({"categories": {"nonexistent": None}}, STORED),
        ({"categories": {"resume": None, "offer": None}}, without("categories")),
        ({"categories": None}, without("categories")),
        (
            {"matrix": {"interview": {"sms": None}}},
            without("matrix", matrix={"interview": {"push": False}, "task": {"email": False}}),
        ),
        (
            {"matrix": {"task": {"email": None}}},
            without("matrix", matrix={"interview": {"sms": True, "push": False}}),
        ),
        (
            {"matrix": {"task": None}},
            without("matrix", matrix={"interview": {"sms": True, "push": False}}),
        ),
        ({"matrix": {"task": {}}}, STORED),
        ({"matrix": {"job": {}}}, STORED),
        (
            {"matrix": {"job": {"in_app": False}}},
            without("matrix", matrix={**STORED["matrix"], "job": {"in_app": False}}),
        ),
        (
            {"matrix": {"interview": {"email": True}}},
            without(
                "matrix",
                matrix={
                    "interview": {"email": True, "sms": True, "push": False},
                    "task": {"email": False},
                },
            ),
        ),
        ({"matrix": {"interview": None, "task": {"email": None}}}, without("matrix")),
        ({"matrix": None}, without("matrix")),
        ({"quiet_hours": None}, without("quiet_hours")),
        (
            {"quiet_hours": {"start": "23:30", "end": "06:00"}},
            without("quiet_hours", quiet_hours={"start": "23:30", "end": "06:00"}),
        ),
        (
            {"quiet_hours": {"start": "23:30", "end": "06:00", "timezone": None}},
            without("quiet_hours", quiet_hours={"start": "23:30", "end": "06:00"}),
        ),
        ({"digest": None}, without("digest")),
        (
            {"digest": {"mode": "weekly"}},
            without("digest", digest={"mode": "weekly", "hour": 8, "weekday": "mon"}),
        ),
        (
            {"digest": {"mode": "off", "hour": 20}},
            without("digest", digest={"mode": "off", "hour": 20, "weekday": "mon"}),
        ),
    ],
)
def test_merge_update(body: dict[str, Any], expected: dict[str, Any]) -> None:
    before = {k: (dict(v) if isinstance(v, dict) else v) for k, v in STORED.items()}
    assert merged(STORED, body) == expected
    assert before == STORED  # the stored document is not mutated


def test_a_partial_digest_replaces_the_stored_one_whole() -> None:
    stored = {"digest": {"mode": "weekly", "hour": 18, "weekday": "fri"}}
    assert merged(stored, {"digest": {"mode": "daily"}}) == {
        "digest": {"mode": "daily", "hour": 8, "weekday": "mon"}
    }


def test_merge_into_nothing() -> None:
    assert merge_update(None, put({"channels": {"sms": None}, "quiet_hours": None})) == {}
    assert merged({}, {"channels": {"sms": False}}) == {"channels": {"sms": False}}


def test_merge_drops_malformed_stored_values() -> None:
    stored = {
        "channels": {"email": "yes", "sms": False, "fax": True},
        "categories": ["resume"],
        "matrix": {"interview": {"sms": 1}, "task": "no"},
        "quiet_hours": {"start": "22:00"},
        "digest": {"mode": "daily", "hour": 99, "weekday": "someday"},
        "legacy": True,
    }
    assert merged(stored, {}) == {
        "channels": {"sms": False},
        "digest": {"mode": "daily", "hour": 8, "weekday": "mon"},
    }


def test_merge_refuses_to_grow_past_the_limit() -> None:
    full = {"categories": {f"c{i:03d}": True for i in range(MAX_KEYS)}}
    assert len(merged(full, {"categories": {"c000": False}})["categories"]) == MAX_KEYS
    with pytest.raises(PreferencesTooLarge) as caught:
        merged(full, {"categories": {"one-more": False}})
    assert caught.value.field == "categories"
    rows = {"matrix": {f"c{i:03d}": {"sms": True} for i in range(MAX_KEYS)}}
    with pytest.raises(PreferencesTooLarge) as caught:
        merged(rows, {"matrix": {"one-more": {"sms": False}}})
    assert caught.value.field == "matrix"
    # an over-full legacy document can still shrink
    over = {"categories": {f"c{i:03d}": True for i in range(MAX_KEYS + 5)}}
    assert len(merged(over, {"categories": {"c000": None}})["categories"]) == MAX_KEYS + 4


switch = st.one_of(st.none(), st.booleans())
slug = st.sampled_from(["interview", "resume", "offer", "task", "a.b", "x-1"])
channel_body = st.dictionaries(st.sampled_from(["email", "sms", "push", "in_app"]), switch)
update_body = st.fixed_dictionaries(
    {},
    optional={
        "channels": st.one_of(st.none(), channel_body),
        "categories": st.one_of(st.none(), st.dictionaries(slug, switch)),
        "matrix": st.one_of(st.none(), st.dictionaries(slug, st.one_of(st.none(), channel_body))),
        "quiet_hours": st.one_of(
            st.none(),
            st.sampled_from(
                [
                    {"start": "22:00", "end": "07:00"},
                    {"start": "09:00", "end": "17:30", "timezone": "America/New_York"},
                ]
            ),
        ),
        "digest": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"mode": st.sampled_from(["off", "daily", "weekly"])},
                optional={"hour": st.integers(0, 23), "weekday": st.sampled_from(["tue", "sun"])},
            ),
        ),
    },
)


@given(first=update_body, second=update_body)
@settings(max_examples=200)
def test_merged_documents_are_canonical_and_valid_put_bodies(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    doc = merged(merged({}, first), second)
    assert normalize(doc) == doc
    assert merged(doc, second) == doc  # applying the same PUT again changes nothing
    assert merged({}, doc) == doc  # a stored document is itself a valid PUT body
    for key, value in doc.items():
        assert value != {}, key  # only set keys are stored
    for row in doc.get("matrix", {}).values():
        assert row


# --- effective values and their source ------------------------------------------------------


def test_effective_defaults() -> None:
    values, source = effective({}, {})
    assert values == {
        "channels": {"email": True, "sms": True, "push": True, "in_app": True},
        "categories": {},
        "matrix": {},
        "quiet_hours": None,
        "digest": {"mode": "off", "hour": 8, "weekday": "mon"},
    }
    assert source == {
        "channels": dict.fromkeys(("email", "sms", "push", "in_app"), "default"),
        "categories": {},
        "matrix": {},
        "quiet_hours": "default",
        "digest": "default",
    }


def test_effective_mixes_levels() -> None:
    tenant = {
        "channels": {"sms": False, "push": False},
        "categories": {"resume": False, "job": False},
        "matrix": {"interview": {"sms": True, "email": False}},
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "digest": {"mode": "weekly", "hour": 9, "weekday": "fri"},
    }
    recipient = {
        "channels": {"push": True},
        "categories": {"resume": True, "offer": False},
        "matrix": {"interview": {"sms": False}, "task": {"in_app": False}},
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
    }
    values, source = effective(recipient, tenant)
    assert values == {
        "channels": {"email": True, "sms": False, "push": True, "in_app": True},
        "categories": {"job": False, "offer": False, "resume": True},
        "matrix": {"interview": {"email": False, "sms": False}, "task": {"in_app": False}},
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
        "digest": {"mode": "weekly", "hour": 9, "weekday": "fri"},
    }
    assert source == {
        "channels": {"email": "default", "sms": "tenant", "push": "recipient", "in_app": "default"},
        "categories": {"job": "tenant", "offer": "recipient", "resume": "recipient"},
        "matrix": {
            "interview": {"email": "tenant", "sms": "recipient"},
            "task": {"in_app": "recipient"},
        },
        "quiet_hours": "recipient",
        "digest": "tenant",
    }


def test_effective_quiet_hours_from_the_tenant_without_zone() -> None:
    values, source = effective(
        {"digest": {"mode": "off"}}, {"quiet_hours": {"start": "21:00", "end": "08:00"}}
    )
    assert values["quiet_hours"] == {"start": "21:00", "end": "08:00", "timezone": None}
    assert source["quiet_hours"] == "tenant"
    assert values["digest"] == {"mode": "off", "hour": 8, "weekday": "mon"}
    assert source["digest"] == "recipient"


def test_read_preferences_is_the_response_model() -> None:
    answer = read_preferences({"matrix": {"interview": {"sms": False}}}, None)
    dumped = answer.model_dump(mode="json")
    assert dumped["matrix"] == {"interview": {"sms": False}}
    assert dumped["source"]["matrix"] == {"interview": {"sms": "recipient"}}
    assert dumped["source"]["channels"]["email"] == "default"
    assert dumped["quiet_hours"] is None


# --- resolution order -----------------------------------------------------------------------

LEVELS = [
    ("recipient", "matrix"),
    ("recipient", "category"),
    ("recipient", "channel"),
    ("tenant", "matrix"),
    ("tenant", "category"),
    ("tenant", "channel"),
]


def with_rule(docs: dict[str, dict[str, Any]], level: str, rule: str, value: bool) -> None:
    doc = docs[level]
    if rule == "matrix":
        doc.setdefault("matrix", {})["interview"] = {"sms": value}
    elif rule == "category":
        doc.setdefault("categories", {})["interview"] = value
    else:
        doc.setdefault("channels", {})["sms"] = value


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("index", range(len(LEVELS)))
def test_every_level_beats_the_ones_below(index: int, value: bool) -> None:
    docs: dict[str, dict[str, Any]] = {"recipient": {}, "tenant": {}}
    level, rule = LEVELS[index]
    with_rule(docs, level, rule, value)
    for lower_level, lower_rule in LEVELS[index + 1 :]:
        with_rule(docs, lower_level, lower_rule, not value)
    # noise that must not matter: other categories and channels, at every level
    for doc in docs.values():
        doc.setdefault("matrix", {})["resume"] = {"sms": not value}
        doc["matrix"].setdefault("interview", {})["email"] = not value
        doc.setdefault("categories", {})["offer"] = not value
        doc.setdefault("channels", {})["push"] = not value
    resolution = resolve_switch(
        docs["recipient"], docs["tenant"], channel="sms", category="interview"
    )
    assert resolution == Resolution(value, level, rule)  # type: ignore[arg-type]
    decision = decide(
        docs["recipient"], docs["tenant"], channel="sms", category="interview",
        priority="normal", now=utc(2026, 6, 1, 12),
    )  # fmt: skip
    assert decision == (Keep() if value else Suppress("preference"))


def test_malformed_stored_values_count_as_unset() -> None:
    recipient = {"channels": {"sms": "no"}, "matrix": {"interview": {"sms": 0}}, "categories": []}
    tenant = {"channels": {"sms": False}}
    assert resolve_switch(recipient, tenant, channel="sms", category="interview") == Resolution(
        False, "tenant", "channel"
    )
    assert resolve_switch({"matrix": "x"}, {}, channel="sms", category="interview").enabled


def test_nothing_set_means_on() -> None:
    assert resolve_switch({}, {}, channel="sms", category="x") == Resolution(
        True, "default", "default"
    )
    assert resolve_switch(None, None, channel="in_app", category="x").enabled


def test_a_recipient_channel_switch_beats_a_tenant_matrix_cell() -> None:
    tenant = {"matrix": {"interview": {"email": False}}}
    assert resolve_switch(
        {"channels": {"email": True}}, tenant, channel="email", category="interview"
    ).enabled
    assert not resolve_switch({}, tenant, channel="email", category="interview").enabled


# --- decide ---------------------------------------------------------------------------------

NOON = utc(2026, 6, 1, 12)  # 14:00 in Berlin
NIGHT = utc(2026, 6, 1, 22)  # midnight in Berlin
EVERYTHING_OFF: dict[str, Any] = {
    "channels": {"email": False, "sms": False, "push": False, "in_app": False},
    "categories": {"interview": False},
    "matrix": {"interview": {"email": False, "sms": False, "push": False, "in_app": False}},
}
QUIET = {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}}
DAILY = {"digest": {"mode": "daily", "hour": 8, "weekday": "mon"}}


def run(
    recipient: dict[str, Any] | None, tenant: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    options: dict[str, Any] = {
        "channel": "email", "category": "interview", "priority": "normal", "now": NOON,
        "recipient_zone": "Europe/Berlin", "kind": "normal",
    }  # fmt: skip
    options.update(kwargs)
    return decide(recipient, tenant, **options)


@pytest.mark.parametrize("channel", ["email", "sms", "push", "in_app"])
@pytest.mark.parametrize("now", [NOON, NIGHT])
def test_urgent_bypasses_switches_quiet_hours_and_digests(channel: str, now: datetime) -> None:
    everything = {**EVERYTHING_OFF, **QUIET, **DAILY}
    assert run(everything, everything, channel=channel, priority="urgent", now=now) == Keep()
    assert run(everything, everything, channel=channel, priority="high", now=now) == Suppress()


@pytest.mark.parametrize("channel", ["email", "sms", "push"])
def test_quiet_hours_hold_email_sms_and_push(channel: str) -> None:
    assert run(QUIET, channel=channel, now=NIGHT) == Hold(utc(2026, 6, 2, 5), "quiet_hours")
    assert run(QUIET, channel=channel, now=NOON) == Keep()
    assert run(QUIET, channel=channel, now=NIGHT, priority="high") == Hold(utc(2026, 6, 2, 5))


def test_in_app_is_never_held_nor_digested_but_can_be_suppressed() -> None:
    assert run({**QUIET, **DAILY}, channel="in_app", now=NIGHT) == Keep()
    assert run({"channels": {"in_app": False}}, channel="in_app") == Suppress()
    assert run({}, {"matrix": {"interview": {"in_app": False}}}, channel="in_app") == Suppress()


def test_webhooks_are_not_governed() -> None:
    assert run({**EVERYTHING_OFF, **QUIET}, channel="webhook", now=NIGHT) == Keep()


def test_reminders_bypass_quiet_hours_and_digests_but_respect_switches() -> None:
    assert run({**QUIET, **DAILY}, channel="email", kind="reminder", now=NIGHT) == Keep()
    assert run({**QUIET, **DAILY}, channel="sms", kind="reminder", now=NIGHT) == Keep()
    assert run({"categories": {"interview": False}}, kind="reminder") == Suppress()
    assert run({}, {"channels": {"sms": False}}, channel="sms", kind="reminder") == Suppress()


def test_digests_fold_low_and_normal_email_only() -> None:
    due = Digest("daily:2026-06-02", utc(2026, 6, 2, 6))
    assert run(DAILY, priority="low") == due
    assert run(DAILY, priority="normal") == due
    assert run(DAILY, priority="high") == Keep()
    assert run(DAILY, priority="urgent") == Keep()
    assert run(DAILY, kind="calendar") == Keep()
    assert run(DAILY, kind="reminder") == Keep()
    for channel in ("sms", "push", "in_app"):
        assert run(DAILY, channel=channel) == Keep()
    assert run({}, DAILY) == due  # the tenant's digest applies too
    assert run({"digest": {"mode": "off"}}, DAILY) == Keep()  # the recipient's "off" wins
    assert run({**DAILY, "channels": {"email": False}}) == Suppress()


def test_calendar_invitations_and_high_priority_are_still_held_by_quiet_hours() -> None:
    held = Hold(utc(2026, 6, 2, 5))
    assert run({**QUIET, **DAILY}, kind="calendar", now=NIGHT) == held
    assert run({**QUIET, **DAILY}, priority="high", now=NIGHT) == held


def test_a_digest_due_inside_quiet_hours_waits_for_the_window_end() -> None:
    late = {"quiet_hours": {"start": "22:00", "end": "09:30"}, **DAILY}
    # 08:00 Berlin (06:00 UTC) is inside 22:00-09:30: due at 09:30 Berlin, same key
    assert run(late, now=NOON) == Digest("daily:2026-06-02", utc(2026, 6, 2, 7, 30))
    # an e-mail arriving inside quiet hours goes to the digest, not to a hold
    assert run(late, now=NIGHT) == Digest("daily:2026-06-02", utc(2026, 6, 2, 7, 30))


def test_quiet_hours_come_from_the_recipient_else_the_tenant() -> None:
    tenant = {"quiet_hours": {"start": "12:00", "end": "13:00"}}
    # the tenant's window, in the recipient's zone (Berlin): 14:00 is outside
    assert run({}, tenant, channel="sms") == Keep()
    assert run({}, tenant, channel="sms", now=utc(2026, 6, 1, 10, 30)) == Hold(utc(2026, 6, 1, 11))
    # no recipient zone either: UTC
    assert run({}, tenant, channel="sms", recipient_zone=None) == Hold(utc(2026, 6, 1, 13))
    # the recipient's own window replaces the tenant's
    mine = {"quiet_hours": {"start": "20:00", "end": "21:00"}}
    assert run(mine, tenant, channel="sms", recipient_zone=None) == Keep()


def test_the_quiet_hours_zone_overrides_the_recipient_zone() -> None:
    new_york = {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "America/New_York"}}
    # 04:00 UTC on 2 June is midnight in New York and 06:00 in Berlin
    now = utc(2026, 6, 2, 4)
    assert run(new_york, channel="push", now=now, recipient_zone="Europe/Berlin") == Hold(
        utc(2026, 6, 2, 11)
    )
    plain = {"quiet_hours": {"start": "22:00", "end": "07:00"}}
    assert run(plain, channel="push", now=now, recipient_zone="Europe/Berlin") == Hold(
        utc(2026, 6, 2, 5)
    )
    assert run(plain, channel="push", now=now, recipient_zone="America/New_York") == Hold(
        utc(2026, 6, 2, 11)
    )


def test_unknown_stored_zones_fall_back_to_utc() -> None:
    broken = {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Atlantis/Capital"}}
    assert run(
        broken, channel="sms", now=utc(2026, 6, 1, 23), recipient_zone="Nowhere/At_All"
    ) == Hold(utc(2026, 6, 2, 7))


def test_decide_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="aware"):
        run({}, now=datetime(2026, 6, 1, 12))
    with pytest.raises(ValueError, match="priority"):
        run({}, priority="critical")
    with pytest.raises(ValueError, match="kind"):
        run({}, kind="other")


# --- quiet_until ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "start", "end", "zone", "until"),
    [
        # same-day window
        (utc(2026, 6, 1, 12), "09:00", "17:00", None, utc(2026, 6, 1, 17)),
        (utc(2026, 6, 1, 9), "09:00", "17:00", None, utc(2026, 6, 1, 17)),
        (utc(2026, 6, 1, 17), "09:00", "17:00", None, None),
        (utc(2026, 6, 1, 8, 59), "09:00", "17:00", None, None),
        # across midnight, before and after midnight
        (utc(2026, 6, 1, 23), "22:00", "07:00", None, utc(2026, 6, 2, 7)),
        (utc(2026, 6, 2, 3), "22:00", "07:00", None, utc(2026, 6, 2, 7)),
        (utc(2026, 6, 1, 22), "22:00", "07:00", None, utc(2026, 6, 2, 7)),
        (utc(2026, 6, 2, 7), "22:00", "07:00", None, None),
        (utc(2026, 6, 1, 21, 59), "22:00", "07:00", None, None),
        (utc(2026, 6, 1, 12), "22:00", "07:00", None, None),
        # Berlin in summer (UTC+2) and winter (UTC+1)
        (utc(2026, 6, 1, 21), "22:00", "07:00", BERLIN, utc(2026, 6, 2, 5)),
        (utc(2026, 1, 15, 21), "22:00", "07:00", BERLIN, utc(2026, 1, 16, 6)),
        (utc(2026, 12, 31, 23), "22:00", "07:00", BERLIN, utc(2027, 1, 1, 6)),
        # Berlin, spring forward on 29 March 2026: 02:00-03:00 CET does not exist
        (utc(2026, 3, 28, 22), "22:00", "02:30", BERLIN, utc(2026, 3, 29, 1)),  # 03:00 CEST
        (utc(2026, 3, 29, 0, 59), "22:00", "02:30", BERLIN, utc(2026, 3, 29, 1)),
        (utc(2026, 3, 29, 1), "22:00", "02:30", BERLIN, None),
        (utc(2026, 3, 28, 22), "22:00", "07:00", BERLIN, utc(2026, 3, 29, 5)),  # 07:00 CEST
        (utc(2026, 3, 29, 0, 50), "02:15", "06:00", BERLIN, None),  # 01:50 CET
        (utc(2026, 3, 29, 1), "02:15", "06:00", BERLIN, utc(2026, 3, 29, 4)),  # opens at 03:00
        (utc(2026, 3, 29, 1), "02:00", "02:45", BERLIN, None),  # a window lost in the gap
        # Berlin, fall back on 25 October 2026: 02:00-03:00 happens twice
        (utc(2026, 10, 24, 21), "22:00", "02:30", BERLIN, utc(2026, 10, 25, 0, 30)),  # 02:30 CEST
        (utc(2026, 10, 25, 0, 10), "22:00", "02:30", BERLIN, utc(2026, 10, 25, 0, 30)),
        (utc(2026, 10, 25, 0, 40), "22:00", "02:30", BERLIN, None),  # 02:40 CEST
        (utc(2026, 10, 25, 1, 10), "22:00", "02:30", BERLIN, None),  # 02:10 CET, second time
        (utc(2026, 10, 24, 21), "22:00", "07:00", BERLIN, utc(2026, 10, 25, 6)),  # 07:00 CET
        (utc(2026, 10, 25, 0, 20), "02:30", "06:00", BERLIN, None),  # 02:20 CEST
        (utc(2026, 10, 25, 0, 30), "02:30", "06:00", BERLIN, utc(2026, 10, 25, 5)),
        (utc(2026, 10, 25, 1, 40), "02:30", "06:00", BERLIN, utc(2026, 10, 25, 5)),  # 02:40 CET
        # New York, spring forward on 8 March 2026 and fall back on 1 November 2026
        (utc(2026, 3, 8, 4), "23:00", "02:30", NEW_YORK, utc(2026, 3, 8, 7)),  # 03:00 EDT
        (utc(2026, 3, 8, 4), "22:00", "07:00", NEW_YORK, utc(2026, 3, 8, 11)),  # 07:00 EDT
        (utc(2026, 11, 1, 3), "22:00", "01:30", NEW_YORK, utc(2026, 11, 1, 5, 30)),  # 01:30 EDT
        (utc(2026, 11, 1, 6, 10), "22:00", "01:30", NEW_YORK, None),  # 01:10 EST
        (utc(2026, 11, 1, 3), "22:00", "07:00", NEW_YORK, utc(2026, 11, 1, 12)),  # 07:00 EST
        # zone names work as well as tzinfo objects
        (utc(2026, 6, 2, 3), "22:00", "07:00", "America/New_York", utc(2026, 6, 2, 11)),
    ],
)
def test_quiet_until(
    now: datetime, start: str, end: str, zone: Any, until: datetime | None
) -> None:
    assert quiet_until(now, start, end, zone) == until
    if until is not None:
        assert until.tzinfo is UTC


def test_a_window_swallowing_the_gap_joins_the_next_one() -> None:
    # 02:45-02:30 leaves a 15-minute gap per day, and on 29 March that gap does not exist
    # in Berlin: the window opening "at 02:45" opens at 03:00 when the previous one closes.
    until = quiet_until(utc(2026, 3, 28, 12), "02:45", "02:30", BERLIN)
    assert until == utc(2026, 3, 30, 0, 30)
    assert until.astimezone(BERLIN).time() == time(2, 30)


def test_quiet_until_accepts_times_and_rejects_bad_input() -> None:
    assert quiet_until(utc(2026, 6, 1, 23), time(22), time(7)) == utc(2026, 6, 2, 7)
    with pytest.raises(ValueError, match="differ"):
        quiet_until(utc(2026, 6, 1), "22:00", "22:00")
    with pytest.raises(ValueError, match="HH:MM"):
        quiet_until(utc(2026, 6, 1), "25:00", "07:00")
    with pytest.raises(ValueError, match="zone"):
        quiet_until(utc(2026, 6, 1), "22:00", "07:00", "Mars/Olympus")
    with pytest.raises(ValueError, match="aware"):
        quiet_until(datetime(2026, 6, 1), "22:00", "07:00")


@pytest.mark.parametrize(
    ("day", "at", "zone", "instant"),
    [
        (date(2026, 3, 29), time(2, 30), BERLIN, utc(2026, 3, 29, 1)),
        (date(2026, 3, 29), time(3), BERLIN, utc(2026, 3, 29, 1)),
        (date(2026, 3, 29), time(1, 59), BERLIN, utc(2026, 3, 29, 0, 59)),
        (date(2026, 10, 25), time(2, 30), BERLIN, utc(2026, 10, 25, 0, 30)),
        (date(2026, 10, 25), time(3), BERLIN, utc(2026, 10, 25, 2)),
        (date(2026, 10, 4), time(2, 15), ZoneInfo("Australia/Lord_Howe"), utc(2026, 10, 3, 15, 30)),
        (date(2011, 12, 30), time(8), ZoneInfo("Pacific/Apia"), utc(2011, 12, 30, 10)),
    ],
)
def test_local_instant(day: date, at: time, zone: ZoneInfo, instant: datetime) -> None:
    assert local_instant(day, at, zone) == instant


# --- digests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "mode", "hour", "weekday", "zone", "key", "due"),
    [
        # daily, Berlin winter: 08:00 CET = 07:00 UTC
        ("2026-11-23 06:59", "daily", 8, "mon", BER, "daily:2026-11-23", "2026-11-23 07:00"),
        ("2026-11-23 07:00", "daily", 8, "mon", BER, "daily:2026-11-24", "2026-11-24 07:00"),
        ("2026-11-23 23:30", "daily", 8, "mon", BER, "daily:2026-11-24", "2026-11-24 07:00"),
        ("2026-11-23 12:00", "daily", 0, "mon", None, "daily:2026-11-24", "2026-11-24 00:00"),
        ("2026-12-31 20:00", "daily", 8, "mon", BER, "daily:2027-01-01", "2027-01-01 07:00"),
        # the key is the recipient's local date, not the UTC one (21:00 on the 22nd in NYC)
        ("2026-11-23 02:00", "daily", 22, "mon", NYC, "daily:2026-11-22", "2026-11-23 03:00"),
        ("2026-11-23 03:00", "daily", 22, "mon", NYC, "daily:2026-11-23", "2026-11-24 03:00"),
        # daily over the DST changes
        ("2026-03-28 12:00", "daily", 2, "mon", BER, "daily:2026-03-29", "2026-03-29 01:00"),
        ("2026-03-28 12:00", "daily", 8, "mon", BER, "daily:2026-03-29", "2026-03-29 06:00"),
        ("2026-10-24 12:00", "daily", 2, "mon", BER, "daily:2026-10-25", "2026-10-25 00:00"),
        ("2026-10-25 00:30", "daily", 2, "mon", BER, "daily:2026-10-26", "2026-10-26 01:00"),
        # weekly
        ("2026-11-23 06:59", "weekly", 8, "mon", BER, "weekly:2026-W48", "2026-11-23 07:00"),
        ("2026-11-23 07:00", "weekly", 8, "mon", BER, "weekly:2026-W49", "2026-11-30 07:00"),
        ("2026-11-25 12:00", "weekly", 8, "mon", BER, "weekly:2026-W49", "2026-11-30 07:00"),
        ("2026-11-25 12:00", "weekly", 18, "wed", BER, "weekly:2026-W48", "2026-11-25 17:00"),
        ("2026-11-25 12:00", "weekly", 9, "sun", NYC, "weekly:2026-W48", "2026-11-29 14:00"),
        # across the year end: 2026 has an ISO week 53 (28 Dec 2026 - 3 Jan 2027)
        ("2026-12-29 12:00", "weekly", 8, "fri", BER, "weekly:2026-W53", "2027-01-01 07:00"),
        ("2026-12-29 12:00", "weekly", 8, "sun", BER, "weekly:2026-W53", "2027-01-03 07:00"),
        ("2026-12-29 12:00", "weekly", 8, "mon", BER, "weekly:2027-W01", "2027-01-04 07:00"),
        ("2027-12-29 12:00", "weekly", 8, "fri", BER, "weekly:2027-W52", "2027-12-31 07:00"),
        ("2025-12-24 12:00", "weekly", 8, "thu", "UTC", "weekly:2025-W52", "2025-12-25 08:00"),
        ("2025-12-25 12:00", "weekly", 8, "thu", "UTC", "weekly:2026-W01", "2026-01-01 08:00"),
        # weekly over DST
        ("2026-03-26 12:00", "weekly", 2, "sun", BER, "weekly:2026-W13", "2026-03-29 01:00"),
    ],
)
def test_next_digest(
    now: str, mode: Any, hour: int, weekday: Any, zone: str | None, key: str, due: str
) -> None:
    assert next_digest(at(now), mode, hour, weekday, zone) == (key, at(due))


def test_next_digest_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="mode"):
        next_digest(NOON, "off")
    with pytest.raises(ValueError, match="hour"):
        next_digest(NOON, "daily", 24)
    with pytest.raises(ValueError, match="weekday"):
        next_digest(NOON, "weekly", 8, "someday")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="period"):
        digest_key("off", date(2026, 1, 1))


# --- properties -----------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Asia/Kolkata",
]
FIXED_ZONES = ["UTC", "Asia/Kolkata"]
# (zone, an instant at which its offset changes): the hard cases, sampled around
TRANSITIONS = [
    ("Europe/Berlin", utc(2026, 3, 29, 1)),
    ("Europe/Berlin", utc(2026, 10, 25, 1)),
    ("America/New_York", utc(2026, 3, 8, 7)),
    ("America/New_York", utc(2026, 11, 1, 6)),
    ("Australia/Lord_Howe", utc(2026, 4, 4, 15)),  # 30-minute change
    ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30)),
    ("America/Santiago", utc(2026, 4, 5, 3)),  # changes at midnight
    ("America/Santiago", utc(2026, 9, 6, 4)),
    ("Pacific/Apia", utc(2011, 12, 30, 10)),  # skipped a whole day
]

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)
)
moments = st.one_of(
    st.tuples(st.sampled_from(ZONES), instants),
    st.builds(
        lambda pair, seconds: (pair[0], pair[1] + timedelta(seconds=seconds)),
        st.sampled_from(TRANSITIONS),
        st.integers(-2 * 86400, 2 * 86400),
    ),
)
clock_times = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))


def in_wall_window(at: time, start: time, end: time) -> bool:
    if start < end:
        return start <= at < end
    return at >= start or at < end


def wall_time_exists(day: date, at: time, zone: ZoneInfo) -> bool:
    naive = datetime.combine(day, at)
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive


@given(moment=moments, start=clock_times, end=clock_times)
@example(moment=(BER, utc(2026, 3, 28, 22)), start=time(22), end=time(2, 30))
@example(moment=(BER, utc(2026, 10, 24, 23)), start=time(22), end=time(2, 30))
@example(moment=(BER, utc(2026, 3, 28, 12)), start=time(2, 45), end=time(2, 30))
@example(moment=("Pacific/Apia", utc(2011, 12, 29, 12)), start=time(22), end=time(8))
@settings(max_examples=1000)
def test_a_hold_ends_after_now_outside_the_window(
    moment: tuple[str, datetime], start: time, end: time
) -> None:
    zone, now = moment
    where = ZoneInfo(zone)
    assume(start != end)
    until = quiet_until(now, start, end, zone)
    if until is None:
        if zone in FIXED_ZONES:
            assert not in_wall_window(now.astimezone(where).time(), start, end)
        return
    assert until > now
    assert until - now <= timedelta(days=2)
    local = until.astimezone(where).time()
    assert local == end or not in_wall_window(local, start, end)
    assert quiet_until(until, start, end, zone) is None
    if zone in FIXED_ZONES:
        assert in_wall_window(now.astimezone(where).time(), start, end)


@given(
    moment=moments,
    mode=st.sampled_from(["daily", "weekly"]),
    hour=st.integers(0, 23),
    weekday=st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
    fraction=st.floats(0, 1, exclude_max=True),
)
@example(moment=(BER, utc(2026, 12, 31, 12)), mode="weekly", hour=8, weekday="fri", fraction=0.5)
@example(moment=(BER, utc(2026, 3, 28, 12)), mode="daily", hour=2, weekday="mon", fraction=0.9)
@example(
    moment=("Pacific/Apia", utc(2011, 12, 29, 12)),
    mode="daily",
    hour=8,
    weekday="mon",
    fraction=0.5,
)
@settings(max_examples=1000)
def test_a_digest_is_due_later_and_its_key_names_the_period(
    moment: tuple[str, datetime], mode: Any, hour: int, weekday: Any, fraction: float
) -> None:
    zone, now = moment
    where = ZoneInfo(zone)
    key, due = next_digest(now, mode, hour, weekday, zone)
    assert due > now
    assert due - now <= timedelta(days=8 if mode == "weekly" else 2)
    assert key.startswith(f"{mode}:")
    # any other moment before the due time is in the same period: same key, same due time
    later = now + (due - now) * fraction
    if later >= due:  # rounding
        later = now
    assert next_digest(later, mode, hour, weekday, zone) == (key, due)
    assert next_digest(later.astimezone(where), mode, hour, weekday, zone) == (key, due)
    # the due moment itself starts the next period
    next_key, next_due = next_digest(due, mode, hour, weekday, zone)
    assert next_key != key
    assert next_due > due
    # the due time is the local hour:00 on the day the key names (on the weekday), unless
    # that wall time does not exist on that day (clocks jumped forward over it, possibly
    # over midnight): then it is the moment of the jump
    local = due.astimezone(where)
    on_time = (local.hour, local.minute, local.second) == (hour, 0, 0)
    days = [
        day
        for day in (local.date(), local.date() - timedelta(days=1))
        if (on_time and day == local.date()) or not wall_time_exists(day, time(hour), where)
    ]
    if mode == "weekly":
        days = [day for day in days if day.strftime("%a").lower() == weekday]
    assert key in {digest_key(mode, day) for day in days}
