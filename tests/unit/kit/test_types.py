"""Shared types: RFC 3339 parsing, UTC formatting, the UTC column type, JSON checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from tidings.kit.types import (
    AwareDatetime,
    UTCDateTime,
    check_json_value,
    format_utc,
    parse_rfc3339,
)

PLUS_2 = timezone(timedelta(hours=2))
MINUS_5_30 = timezone(-timedelta(hours=5, minutes=30))
NOON_UTC = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)

# --- parse_rfc3339 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "instant", "offset"),
    [
        ("2026-01-31T12:00:00Z", NOON_UTC, timedelta(0)),
        ("2026-01-31T12:00:00z", NOON_UTC, timedelta(0)),
        ("2026-01-31t12:00:00Z", NOON_UTC, timedelta(0)),
        ("2026-01-31 12:00:00Z", NOON_UTC, timedelta(0)),
        ("2026-01-31T12:00:00+00:00", NOON_UTC, timedelta(0)),
        ("2026-01-31T14:00:00+02:00", NOON_UTC, timedelta(hours=2)),
        ("2026-01-31T06:30:00-05:30", NOON_UTC, -timedelta(hours=5, minutes=30)),
        ("2026-01-31T12:00:00.250Z", NOON_UTC + timedelta(milliseconds=250), timedelta(0)),
        ("2026-01-31T12:00:00.123456Z", NOON_UTC + timedelta(microseconds=123456), timedelta(0)),
        ("2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC), timedelta(0)),
    ],
)
def test_parse_accepts_zoned_timestamps(text: str, instant: datetime, offset: timedelta) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == instant
    assert parsed.utcoffset() == offset


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-31T12:00:00",  # no zone
        "2026-01-31 12:00:00",
        "2026-01-31T12:00:00.5",
        "2026-01-31",
        "12:00:00Z",
        "2026-01-31T12:00Z",  # no seconds
        "2026-01-31T12:00:00+0200",  # offset without colon
        "2026-01-31T12:00:00+02",
        "2026-01-31T12:00:00 Z",
        " 2026-01-31T12:00:00Z",
        "2026-01-31T12:00:00Z ",
        "2026-01-31T12:00:00Z\n",
        "2026-13-01T12:00:00Z",
        "2026-02-30T12:00:00Z",
        "2026-01-31T25:00:00Z",
        "2026-01-31T12:00:00+24:00",
        "20260131T120000Z",
        "\u0662\u0660\u0662\u0666-01-31T12:00:00Z",  # Arabic-Indic digits
        "tomorrow",
        "",
        None,
        1769860800,
        1769860800.0,
        b"2026-01-31T12:00:00Z",
        datetime(2026, 1, 31, 12, 0),  # naive
        date(2026, 1, 31),
        ["2026-01-31T12:00:00Z"],
    ],
)
def test_parse_rejects_anything_without_a_zone(value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic turns any ValueError into a 422
        parse_rfc3339(value)


@pytest.mark.parametrize("value", [NOON_UTC, datetime(2026, 1, 31, 14, 0, tzinfo=PLUS_2)])
def test_parse_passes_aware_datetimes_through(value: datetime) -> None:
    assert parse_rfc3339(value) is value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (NOON_UTC, "2026-01-31T12:00:00Z"),
        (datetime(2026, 1, 31, 14, 0, tzinfo=PLUS_2), "2026-01-31T12:00:00Z"),
        (datetime(2026, 1, 31, 6, 30, tzinfo=MINUS_5_30), "2026-01-31T12:00:00Z"),
        (datetime(2026, 1, 1, 1, 0, 0, 500000, tzinfo=PLUS_2), "2025-12-31T23:00:00.500000Z"),
    ],
)
def test_format_utc(value: datetime, text: str) -> None:
    assert format_utc(value) == text
    assert parse_rfc3339(format_utc(value)) == value


def test_aware_datetime_field_reads_rfc3339_and_writes_utc() -> None:
    adapter: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
    value = adapter.validate_json('"2026-01-31T14:00:00+02:00"')
    assert value == NOON_UTC
    assert adapter.dump_json(value) == b'"2026-01-31T12:00:00Z"'
    with pytest.raises(ValidationError):
        adapter.validate_json('"2026-01-31T14:00:00"')
    with pytest.raises(ValidationError):
        adapter.validate_json("1769860800")


# --- UTCDateTime -----------------------------------------------------------------------

SQLITE = sqlite.dialect()
POSTGRESQL = postgresql.dialect()
COLUMN = UTCDateTime()


@pytest.mark.parametrize(
    ("dialect", "value", "stored"),
    [
        (SQLITE, NOON_UTC, datetime(2026, 1, 31, 12, 0)),
        (SQLITE, datetime(2026, 1, 31, 14, 0, tzinfo=PLUS_2), datetime(2026, 1, 31, 12, 0)),
        (POSTGRESQL, NOON_UTC, NOON_UTC),
        (POSTGRESQL, datetime(2026, 1, 31, 6, 30, tzinfo=MINUS_5_30), NOON_UTC),
        (SQLITE, None, None),
        (POSTGRESQL, None, None),
    ],
)
def test_bind_stores_utc(dialect: Dialect, value: datetime | None, stored: datetime | None) -> None:
    bound = COLUMN.process_bind_param(value, dialect)
    assert bound == stored
    if bound is not None:
        # SQLite's DateTime would drop an offset, so it gets naive UTC; PostgreSQL keeps UTC
        assert bound.tzinfo is (None if dialect is SQLITE else UTC)


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL])
def test_bind_refuses_naive_datetimes(dialect: Dialect) -> None:
    with pytest.raises(ValueError, match="naive"):
        COLUMN.process_bind_param(datetime(2026, 1, 31, 12, 0), dialect)


@pytest.mark.parametrize(
    ("dialect", "loaded"),
    [
        (SQLITE, datetime(2026, 1, 31, 12, 0)),
        (POSTGRESQL, NOON_UTC),
        (POSTGRESQL, datetime(2026, 1, 31, 14, 0, tzinfo=PLUS_2)),
    ],
)
def test_result_is_aware_utc(dialect: Dialect, loaded: datetime) -> None:
    result = COLUMN.process_result_value(loaded, dialect)
    assert result == NOON_UTC
    assert result is not None
    assert result.tzinfo is UTC


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL])
def test_result_none_stays_none(dialect: Dialect) -> None:
    assert COLUMN.process_result_value(None, dialect) is None


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL])
def test_bind_then_result_is_the_same_instant(dialect: Dialect) -> None:
    value = datetime(2026, 3, 29, 3, 15, 7, 123456, tzinfo=PLUS_2)
    back = COLUMN.process_result_value(COLUMN.process_bind_param(value, dialect), dialect)
    assert back == value
    assert back is not None
    assert back.utcoffset() == timedelta(0)


# --- check_json_value ------------------------------------------------------------------


def nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "text with ünïcode and \n newlines",
        0,
        1.5,
        True,
        [],
        {},
        {"a": [1, 2.5, None, False, {"b": "c"}], "": "empty key"},
        nested(32),
    ],
)
def test_check_json_value_accepts_ordinary_documents(value: Any) -> None:
    assert check_json_value(value) is value


@pytest.mark.parametrize(
    "value",
    [
        "a\x00b",
        {"k": "a\x00"},
        {"k\x00": "v"},
        {"outer": {"in\x00ner": 1}},
        ["ok", ["deep", "\x00"]],
        {1: "non-string key"},
        float("nan"),
        float("inf"),
        {"k": [float("-inf")]},
        nested(33),
        nested(10_000),  # refused before Python's recursion limit is reached
    ],
)
def test_check_json_value_rejects(value: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        check_json_value(value)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"k\x00": 1}, "NUL"),
        (["\x00"], "NUL"),
        (nested(40), "nested deeper than 32"),
        ([float("nan")], "finite"),
    ],
)
def test_check_json_value_says_why(value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_json_value(value)


def test_check_json_value_depth_is_configurable() -> None:
    check_json_value(nested(3), max_depth=3)
    with pytest.raises(ValueError, match="deeper than 2"):
        check_json_value(nested(3), max_depth=2)
