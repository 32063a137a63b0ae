"""Column and field types shared by every domain."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, StrictStr
from sqlalchemy import DateTime, Dialect, TypeDecorator
from sqlalchemy.types import JSON

RECIPIENT_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
TENANT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
TEMPLATE_KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
CATEGORY_PATTERN = r"^[a-z0-9_.-]{1,64}$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always returns aware datetimes, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a zone")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JSONValue(TypeDecorator[Any]):
    """A JSON document column; Python ``None`` is stored as SQL NULL."""

    impl = JSON(none_as_null=True)
    cache_ok = True


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_rfc3339(value: object) -> datetime:
    """Accept only RFC 3339 strings with a zone (or aware datetimes from Python callers)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp must carry a zone")
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with a zone, e.g. 2026-01-31T09:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise ValueError(f"invalid timestamp: {exc}") from None
    return parsed


def format_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


AwareDatetime = Annotated[
    datetime,
    BeforeValidator(parse_rfc3339),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]
"""A request/response timestamp: RFC 3339 with a zone in, UTC out."""

UTCTimestamp = Annotated[datetime, PlainSerializer(format_utc, return_type=str, when_used="json")]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


CleanStr = Annotated[StrictStr, AfterValidator(_no_nul)]
RecipientId = Annotated[CleanStr, Field(pattern=RECIPIENT_ID_PATTERN)]
TemplateKey = Annotated[CleanStr, Field(pattern=TEMPLATE_KEY_PATTERN)]
Category = Annotated[CleanStr, Field(pattern=CATEGORY_PATTERN)]


def check_json_value(value: Any, *, max_depth: int = 32) -> Any:
    """Reject NUL characters anywhere (keys included) and absurd nesting in free-form JSON."""

    def walk(node: Any, depth: int) -> None:
        if depth > max_depth:
            raise ValueError(f"nested deeper than {max_depth} levels")
        if isinstance(node, str):
            _no_nul(node)
        elif isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    raise ValueError("object keys must be strings")
                _no_nul(key)
                walk(item, depth + 1)
        elif isinstance(node, list):
            for item in node:
                walk(item, depth + 1)
        elif isinstance(node, float) and (node != node or node in (float("inf"), float("-inf"))):
            raise ValueError("must be finite")

    walk(value, 0)
    return value


JSONObject = Annotated[dict[str, Any], AfterValidator(check_json_value)]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
