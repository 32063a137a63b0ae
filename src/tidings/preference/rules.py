"""The pure rules of preferences: merging a PUT, the effective view, per-delivery decisions.

No database and no domain: callers pass the stored documents and get plain values back.
A stored document (:data:`Preferences`) is a JSON-able dict shaped like the PUT body that
holds only the keys that are set, e.g. ``{"channels": {"sms": False}, "digest": {"mode":
"daily", "hour": 8, "weekday": "mon"}}``; the tenant's defaults use the same shape. Values
of the wrong type in a stored document are ignored as if unset, never trusted.

Resolution of one channel of one notification, most specific first: the recipient's matrix
cell, category switch, channel switch, then the same three of the tenant, then the built-in
defaults (every channel on, digest off, no quiet hours). Then, in :func:`decide`:

- ``urgent`` bypasses switches, quiet hours and digests (hard opt-outs are checked elsewhere);
- an off switch suppresses (``in_app`` too);
- ``in_app`` is never held and never digested;
- ``kind="reminder"`` (interview reminders) bypasses quiet hours and digests;
- a ``low``/``normal`` e-mail of ``kind="normal"`` goes to the digest when one is on (its
  due time moves to the end of quiet hours when it falls inside them); ``high`` e-mail and
  ``kind="calendar"`` (an e-mail carrying an invitation) are never digested;
- e-mail, SMS and push inside quiet hours are held until the window ends.

Time zones: quiet hours use their own ``timezone``, else the recipient's zone, else UTC;
digests use the recipient's zone, else UTC. Local wall times that do not exist (clocks
jumping forward) resolve to the first valid instant after them; ambiguous ones (clocks
going back) to their first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tidings.preference.schemas import (
    CHANNELS,
    CLOCK_PATTERN,
    DEFAULT_DIGEST_HOUR,
    DEFAULT_DIGEST_WEEKDAY,
    DIGEST_MODES,
    MAX_KEYS,
    WEEKDAYS,
    DigestMode,
    PreferencesRead,
    PreferencesUpdate,
    Source,
    Weekday,
)

Preferences: TypeAlias = dict[str, Any]
"""A stored preference document (recipient or tenant level): only the keys that are set."""

Kind = Literal["normal", "reminder", "calendar"]
KINDS: Final[tuple[Kind, ...]] = ("normal", "reminder", "calendar")
PRIORITIES: Final = ("low", "normal", "high", "urgent")
DIGESTIBLE_PRIORITIES: Final = frozenset({"low", "normal"})
HELD_CHANNELS: Final = frozenset({"email", "sms", "push"})

_CLOCK = re.compile(CLOCK_PATTERN)
_DAY: Final = timedelta(days=1)


class PreferencesTooLarge(ValueError):
    """A merge would grow ``field`` (``categories`` or ``matrix``) past :data:`MAX_KEYS`
    entries; answer it like a validation error (422) on that field."""

    def __init__(self, field: Literal["categories", "matrix"], count: int) -> None:
        what = "categories" if field == "categories" else "matrix rows"
        super().__init__(f"at most {MAX_KEYS} {what} may be set, this would make {count}")
        self.field = field
        self.count = count


# --- decisions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Keep:
    """Deliver now (as far as preferences are concerned)."""


@dataclass(frozen=True, slots=True)
class Suppress:
    """Do not deliver; record the delivery as suppressed with this reason."""

    reason: Literal["preference"] = "preference"


@dataclass(frozen=True, slots=True)
class Hold:
    """Schedule the delivery for ``until`` (aware, UTC)."""

    until: datetime
    reason: Literal["quiet_hours"] = "quiet_hours"


@dataclass(frozen=True, slots=True)
class Digest:
    """Fold the e-mail into the recipient's digest ``period_key``, due at ``due_at`` (UTC)."""

    period_key: str
    due_at: datetime
    reason: Literal["digest"] = "digest"


Decision: TypeAlias = Keep | Suppress | Hold | Digest


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of the switches for one channel and category, and which rule decided."""

    enabled: bool
    source: Source
    rule: Literal["matrix", "category", "channel", "default"]


# --- reading stored documents (tolerant: wrong types count as unset) ----------------------


def _channels_of(doc: Mapping[str, Any]) -> dict[str, bool]:
    raw = doc.get("channels")
    if not isinstance(raw, Mapping):
        return {}
    return {name: raw[name] for name in CHANNELS if isinstance(raw.get(name), bool)}


def _categories_of(doc: Mapping[str, Any]) -> dict[str, bool]:
    raw = doc.get("categories")
    if not isinstance(raw, Mapping):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, bool)}


def _matrix_of(doc: Mapping[str, Any]) -> dict[str, dict[str, bool]]:
    raw = doc.get("matrix")
    if not isinstance(raw, Mapping):
        return {}
    rows: dict[str, dict[str, bool]] = {}
    for category, row in raw.items():
        if not isinstance(category, str) or not isinstance(row, Mapping):
            continue
        cells: dict[str, bool] = {
            name: row[name] for name in CHANNELS if isinstance(row.get(name), bool)
        }
        if cells:
            rows[category] = cells
    return rows


def _quiet_hours_of(doc: Mapping[str, Any]) -> dict[str, str] | None:
    raw = doc.get("quiet_hours")
    if not isinstance(raw, Mapping):
        return None
    start, end, zone = raw.get("start"), raw.get("end"), raw.get("timezone")
    if not (isinstance(start, str) and isinstance(end, str)):
        return None
    if not (_CLOCK.match(start) and _CLOCK.match(end)) or start == end:
        return None
    window = {"start": start, "end": end}
    if isinstance(zone, str):
        window["timezone"] = zone
    return window


def _digest_of(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = doc.get("digest")
    if not isinstance(raw, Mapping) or raw.get("mode") not in DIGEST_MODES:
        return None
    hour = raw.get("hour")
    weekday = raw.get("weekday")
    valid_hour = isinstance(hour, int) and not isinstance(hour, bool) and 0 <= hour <= 23
    return {
        "mode": raw["mode"],
        "hour": hour if valid_hour else DEFAULT_DIGEST_HOUR,
        "weekday": weekday if weekday in WEEKDAYS else DEFAULT_DIGEST_WEEKDAY,
    }


def _assemble(
    channels: dict[str, bool],
    categories: dict[str, bool],
    matrix: dict[str, dict[str, bool]],
    quiet_hours: dict[str, str] | None,
    digest: dict[str, Any] | None,
) -> Preferences:
    """A canonical document: only set keys, channels in a fixed order, categories sorted."""
    doc: Preferences = {}
    if channels:
        doc["channels"] = {name: channels[name] for name in CHANNELS if name in channels}
    if categories:
        doc["categories"] = dict(sorted(categories.items()))
    rows = {
        category: {name: row[name] for name in CHANNELS if name in row}
        for category, row in sorted(matrix.items())
        if row
    }
    if rows:
        doc["matrix"] = rows
    if quiet_hours is not None:
        doc["quiet_hours"] = quiet_hours
    if digest is not None:
        doc["digest"] = digest
    return doc


def normalize(doc: Mapping[str, Any] | None) -> Preferences:
    """The canonical form of a stored document, dropping anything malformed."""
    doc = doc or {}
    return _assemble(
        _channels_of(doc),
        _categories_of(doc),
        _matrix_of(doc),
        _quiet_hours_of(doc),
        _digest_of(doc),
    )


# --- merging a PUT ----------------------------------------------------------------------


def _apply(current: Mapping[str, bool], changes: Mapping[str, bool | None]) -> dict[str, bool]:
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _check_size(field: Literal["categories", "matrix"], before: int, after: int) -> None:
    # Only growth is refused, so a document over the limit can always be cleaned up.
    if after > MAX_KEYS and after > before:
        raise PreferencesTooLarge(field, after)


def merge_update(stored: Mapping[str, Any] | None, update: PreferencesUpdate) -> Preferences:
    """Apply a PUT to a stored document and return the new document (the input is untouched).

    Omitted keys keep their value and ``null`` removes it, at every level: a null channel,
    category or matrix cell removes that one value (rows left empty disappear), a null
    matrix row removes the row, a null section (``channels``, ``categories``, ``matrix``,
    ``quiet_hours``, ``digest``) removes all of it. ``quiet_hours`` and ``digest`` objects
    replace the stored ones whole. Raises :class:`PreferencesTooLarge` when the result
    would hold more than :data:`MAX_KEYS` categories or matrix rows.
    """
    stored = stored or {}
    channels = _channels_of(stored)
    categories = _categories_of(stored)
    matrix = _matrix_of(stored)
    quiet_hours = _quiet_hours_of(stored)
    digest = _digest_of(stored)
    given = update.model_fields_set

    if "channels" in given:
        if update.channels is None:
            channels = {}
        else:
            channels = _apply(channels, update.channels.model_dump(exclude_unset=True))

    if "categories" in given:
        before = len(categories)
        categories = {} if update.categories is None else _apply(categories, update.categories)
        _check_size("categories", before, len(categories))

    if "matrix" in given:
        before = len(matrix)
        if update.matrix is None:
            matrix = {}
        else:
            for category, cells in update.matrix.items():
                if cells is None:
                    matrix.pop(category, None)
                    continue
                merged = _apply(matrix.get(category, {}), cells.model_dump(exclude_unset=True))
                if merged:
                    matrix[category] = merged
                else:
                    matrix.pop(category, None)
        _check_size("matrix", before, len(matrix))

    if "quiet_hours" in given:
        if update.quiet_hours is None:
            quiet_hours = None
        else:
            quiet_hours = {"start": update.quiet_hours.start, "end": update.quiet_hours.end}
            if update.quiet_hours.timezone is not None:
                quiet_hours["timezone"] = update.quiet_hours.timezone

    if "digest" in given:
        digest = None if update.digest is None else update.digest.model_dump()

    return _assemble(channels, categories, matrix, quiet_hours, digest)


# --- the effective view (GET) -------------------------------------------------------------


def _default_digest() -> dict[str, Any]:
    return {"mode": "off", "hour": DEFAULT_DIGEST_HOUR, "weekday": DEFAULT_DIGEST_WEEKDAY}


def effective(
    recipient: Mapping[str, Any] | None, tenant: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The GET answer: ``(values, source)``, both shaped like the PUT body.

    Channels are always all four (default on). Categories and matrix cells are listed when
    set at either level, with the recipient's value before the tenant's. ``quiet_hours``
    (``None`` when unset; a missing ``timezone`` is ``None``, meaning the recipient's zone)
    and ``digest`` (default ``off``, 8, ``mon``) come whole from one level, so their source
    is a single string.
    """
    mine, theirs = recipient or {}, tenant or {}
    values: dict[str, Any] = {}
    source: dict[str, Any] = {}

    my_channels, their_channels = _channels_of(mine), _channels_of(theirs)
    values["channels"], source["channels"] = {}, {}
    for name in CHANNELS:
        value, origin = _pick(my_channels.get(name), their_channels.get(name), True)
        values["channels"][name] = value
        source["channels"][name] = origin

    my_categories, their_categories = _categories_of(mine), _categories_of(theirs)
    values["categories"], source["categories"] = {}, {}
    for category in sorted(my_categories.keys() | their_categories.keys()):
        value, origin = _pick(my_categories.get(category), their_categories.get(category), True)
        values["categories"][category] = value
        source["categories"][category] = origin

    my_matrix, their_matrix = _matrix_of(mine), _matrix_of(theirs)
    values["matrix"], source["matrix"] = {}, {}
    for category in sorted(my_matrix.keys() | their_matrix.keys()):
        my_row, their_row = my_matrix.get(category, {}), their_matrix.get(category, {})
        row_values: dict[str, bool] = {}
        row_source: dict[str, Source] = {}
        for name in CHANNELS:
            if name in my_row or name in their_row:
                value, origin = _pick(my_row.get(name), their_row.get(name), True)
                row_values[name], row_source[name] = value, origin
        values["matrix"][category] = row_values
        source["matrix"][category] = row_source

    quiet, quiet_source = _level(_quiet_hours_of(mine), _quiet_hours_of(theirs))
    values["quiet_hours"] = None if quiet is None else {"timezone": None, **quiet}
    source["quiet_hours"] = quiet_source

    digest, digest_source = _level(_digest_of(mine), _digest_of(theirs))
    values["digest"] = digest if digest is not None else _default_digest()
    source["digest"] = digest_source
    return values, source


def read_preferences(
    recipient: Mapping[str, Any] | None, tenant: Mapping[str, Any] | None
) -> PreferencesRead:
    """:func:`effective` as the response model."""
    values, source = effective(recipient, tenant)
    return PreferencesRead.model_validate({**values, "source": source})


def _pick(mine: bool | None, theirs: bool | None, default: bool) -> tuple[bool, Source]:
    if mine is not None:
        return mine, "recipient"
    if theirs is not None:
        return theirs, "tenant"
    return default, "default"


def _level(
    mine: dict[str, Any] | None, theirs: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, Source]:
    if mine is not None:
        return mine, "recipient"
    if theirs is not None:
        return theirs, "tenant"
    return None, "default"


# --- resolution -------------------------------------------------------------------------


def resolve_switch(
    recipient: Mapping[str, Any] | None,
    tenant: Mapping[str, Any] | None,
    *,
    channel: str,
    category: str,
) -> Resolution:
    """Whether ``channel`` is on for ``category``: the first rule that is set wins.

    Urgent priority is not considered here; :func:`decide` applies it.
    """
    levels: tuple[tuple[Source, Mapping[str, Any]], ...] = (
        ("recipient", recipient or {}),
        ("tenant", tenant or {}),
    )
    for origin, doc in levels:
        cell = _switch_at(doc, "matrix", category, channel)
        if cell is not None:
            return Resolution(cell, origin, "matrix")
        switch = _switch_at(doc, "categories", category)
        if switch is not None:
            return Resolution(switch, origin, "category")
        switch = _switch_at(doc, "channels", channel)
        if switch is not None:
            return Resolution(switch, origin, "channel")
    return Resolution(True, "default", "default")


def _switch_at(node: Any, *path: str) -> bool | None:
    """The boolean at ``path`` in a stored document, or ``None`` (unset or malformed)."""
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, bool) else None


def decide(
    recipient: Mapping[str, Any] | None,
    tenant: Mapping[str, Any] | None,
    *,
    channel: str,
    category: str,
    priority: str,
    now: datetime,
    recipient_zone: str | None = None,
    kind: Kind = "normal",
) -> Decision:
    """What preferences say about one delivery (one channel of one notification) at ``now``.

    Channels other than email, sms, push and in_app (webhooks) are not governed: Keep.
    Unknown time zone names fall back to UTC rather than failing a send.
    """
    _require_aware(now)
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    if channel not in CHANNELS or priority == "urgent":
        return Keep()
    if not resolve_switch(recipient, tenant, channel=channel, category=category).enabled:
        return Suppress()
    if channel not in HELD_CHANNELS or kind == "reminder":
        return Keep()

    mine, theirs = recipient or {}, tenant or {}
    quiet, _ = _level(_quiet_hours_of(mine), _quiet_hours_of(theirs))
    quiet_zone = _zone_or_utc(quiet.get("timezone") if quiet else None, recipient_zone)

    if channel == "email" and kind == "normal" and priority in DIGESTIBLE_PRIORITIES:
        digest, _ = _level(_digest_of(mine), _digest_of(theirs))
        if digest is not None and digest["mode"] != "off":
            key, due_at = next_digest(
                now, digest["mode"], digest["hour"], digest["weekday"], _zone_or_utc(recipient_zone)
            )
            if quiet is not None:
                due_at = quiet_until(due_at, quiet["start"], quiet["end"], quiet_zone) or due_at
            return Digest(key, due_at)

    if quiet is not None:
        until = quiet_until(now, quiet["start"], quiet["end"], quiet_zone)
        if until is not None:
            return Hold(until)
    return Keep()


# --- time -------------------------------------------------------------------------------


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")


def _zone(zone: str | tzinfo | None) -> tzinfo:
    if zone is None or zone == "UTC":
        return UTC
    if isinstance(zone, tzinfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata directory
        raise ValueError(f"unknown time zone {zone!r}") from None


def _zone_or_utc(*names: str | None) -> tzinfo:
    """The first of ``names`` that is a known zone, else UTC."""
    for name in names:
        if name:
            try:
                return _zone(name)
            except ValueError:
                continue
    return UTC


def _clock(value: str | time) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if not _CLOCK.match(value):
        raise ValueError(f"{value!r} is not a HH:MM time")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _offset_at(instant: int, zone: tzinfo) -> timedelta | None:
    return datetime.fromtimestamp(instant, UTC).astimezone(zone).utcoffset()


def local_instant(day: date, at: time, zone: tzinfo) -> datetime:
    """The UTC instant of the wall time ``day at`` in ``zone``.

    An ambiguous wall time (clocks going back) is its first occurrence; a wall time that
    does not exist (clocks jumping forward) is the first valid instant after it, i.e. the
    moment of the jump.
    """
    naive = datetime.combine(day, at)
    instant = naive.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first occurrence
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # In a gap, fold=0 reads the wall time with the offset before the jump and fold=1 with
    # the one after: the jump lies between the two readings. Find it to the second.
    before = int(naive.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    after = int(instant.timestamp())
    if before > after:
        before, after = after, before
    offset_after = _offset_at(after, zone)
    while after - before > 1:
        middle = (before + after) // 2
        if _offset_at(middle, zone) == offset_after:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _window(day: date, start: time, end: time, zone: tzinfo) -> tuple[datetime, datetime]:
    """The quiet window that starts on ``day`` (local), as a half-open UTC interval."""
    end_day = day + _DAY if end <= start else day
    return local_instant(day, start, zone), local_instant(end_day, end, zone)


def quiet_until(
    now: datetime, start: str | time, end: str | time, zone: str | tzinfo | None = None
) -> datetime | None:
    """The end (UTC) of the quiet window ``now`` is in, or ``None`` when it is outside.

    ``start``/``end`` are local wall times (``"HH:MM"``); ``end`` before ``start`` crosses
    midnight; the window includes ``start`` and excludes ``end``. ``zone`` is an IANA name
    or tzinfo (``None``: UTC); an unknown name is a ValueError. When the DST change makes
    two windows touch, the hold runs to the end of the later one.
    """
    _require_aware(now)
    begin, finish, where = _clock(start), _clock(end), _zone(zone)
    if begin == finish:
        raise ValueError("start and end must differ")
    instant = now.astimezone(UTC)
    today = instant.astimezone(where).date()
    for shift in (-2, -1, 0, 1):
        day = today + timedelta(days=shift)
        opens, closes = _window(day, begin, finish, where)
        if opens <= instant < closes:
            break
    else:
        return None
    for _ in range(3):
        day += _DAY
        opens, next_closes = _window(day, begin, finish, where)
        if not opens <= closes < next_closes:
            break
        closes = next_closes
    return closes


def digest_key(mode: DigestMode, day: date) -> str:
    """The period key of the digest due on local ``day``: ``daily:2026-11-23`` or
    ``weekly:2026-W48`` (ISO week-numbering year and week)."""
    if mode == "daily":
        return f"daily:{day.isoformat()}"
    if mode == "weekly":
        year, week, _ = day.isocalendar()
        return f"weekly:{year:04d}-W{week:02d}"
    raise ValueError("a digest that is off has no period")


def next_digest(
    now: datetime,
    mode: DigestMode,
    hour: int = DEFAULT_DIGEST_HOUR,
    weekday: Weekday = DEFAULT_DIGEST_WEEKDAY,
    zone: str | tzinfo | None = None,
) -> tuple[str, datetime]:
    """``(period_key, due_at)`` of the digest that collects an e-mail arriving at ``now``.

    ``due_at`` (UTC) is the next local ``hour:00`` strictly after ``now`` (daily), or the
    next ``weekday hour:00`` (weekly); the key names the local date (or ISO week) it is due
    on, so every ``now`` in ``[previous due, due)`` gets the same key on any machine.
    """
    _require_aware(now)
    if mode not in ("daily", "weekly"):
        raise ValueError("mode must be daily or weekly")
    if not 0 <= hour <= 23:
        raise ValueError("hour must be 0-23")
    if weekday not in WEEKDAYS:
        raise ValueError(f"unknown weekday {weekday!r}")
    where = _zone(zone)
    at = time(hour)
    instant = now.astimezone(UTC)
    day = instant.astimezone(where).date() - _DAY
    step = _DAY
    if mode == "weekly":
        day += timedelta(days=(WEEKDAYS.index(weekday) - day.weekday()) % 7)
        step = timedelta(days=7)
    while True:
        due_at = local_instant(day, at, where)
        if due_at > instant:
            return digest_key(mode, day), due_at
        day += step
