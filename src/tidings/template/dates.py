"""Locale-aware formatting behind the ``date`` and ``datetime`` template filters.

A format containing ``%`` is a ``strftime`` format: ``%A %a %B %b %h %p`` (day and month
names, AM/PM) come from the CLDR data of the render's locale (format context, e.g.
German "Montag", "März"), everything else (``%Z`` included) is plain ``strftime``. With
no locale, or one Babel does not know, the output is exactly ``strftime``'s (English/C),
except that formats over ``MAX_FORMAT_LENGTH`` characters and field widths over 64
(``%999999999d``) are refused.

A format without ``%`` is CLDR: one of the names in ``NAMED_FORMATS`` (Babel's
``format_datetime`` / ``format_date``) or a pattern such as ``"EEEE d MMMM y HH:mm"``,
always in the render's locale (English without one).

Formats come from tenants' templates, so every failure is a ``DateFormatError`` (the
sandbox reports it to the template author), formats are bounded in length, and parsed
locales and patterns are cached: a fan-out formats the same few values thousands of times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import lru_cache
from typing import Final

from babel import Locale
from babel.dates import PATTERN_CHARS, DateTimeFormat, tokenize_pattern
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime

__all__ = [
    "MAX_FORMAT_LENGTH",
    "NAMED_FORMATS",
    "DateFormatError",
    "LocaleNames",
    "babel_locale",
    "format_moment",
    "locale_names",
]

MAX_FORMAT_LENGTH: Final = 256
"""Longest accepted format string; real formats are a few dozen characters."""
NAMED_FORMATS: Final = frozenset({"short", "medium", "long", "full"})
_MAX_WIDTH: Final = 64
_MAX_TAG_LENGTH: Final = 64
_LOCALE_CACHE_SIZE: Final = 256
_FORMAT_CACHE_SIZE: Final = 1024
_ENGLISH: Final = Locale("en")

# ``%``, optional glibc flags and width, an optional E/O modifier, the conversion.
_DIRECTIVE: Final = re.compile(
    r"%(?P<flags>[-_0^#]*)(?P<width>[0-9]*)(?P<mod>[EO]?)(?P<conv>.)", re.S
)
# (conversion, E/O modifier) pairs that are names; glibc reads %OB %Ob %Oh as the names
# and ignores a modifier on %p, while e.g. %EA is no directive (printed as is).
_LOCALIZED: Final = frozenset(
    {(c, "") for c in "AaBbhp"} | {(c, "O") for c in "Bbh"} | {("p", "E"), ("p", "O")}
)
# Unquoted ASCII letters are reserved in CLDR patterns; these are the ones Babel formats.
_CLDR_FIELDS: Final = frozenset("GyYuQqMLwWdDFEecabBhHKkmsSAzZOvVxX")
_CLDR_TIME_FIELDS: Final = frozenset("abBhHKkmsSAzZOvVxX")
_QUOTED: Final = re.compile(r"'[^']*'")
_ASCII_LETTER: Final = re.compile(r"[A-Za-z]")


class DateFormatError(ValueError):
    """A format string that cannot be used; the message is meant for the template author."""


# --------------------------------------------------------------------------- locales


@dataclass(frozen=True, slots=True)
class LocaleNames:
    """A Babel locale and the names ``strftime`` directives take from it.

    ``days_*`` start on Monday (``date.weekday()``), ``months_*`` on January.
    """

    locale: Locale
    days_wide: tuple[str, ...]
    days_abbreviated: tuple[str, ...]
    months_wide: tuple[str, ...]
    months_abbreviated: tuple[str, ...]
    am: str
    pm: str


def _candidates(tag: str) -> list[str]:
    """``de-AT`` -> ``de_AT``, ``de``: the identifiers to try, most specific first."""
    # "de_AT.UTF-8@euro" is de_AT; "-" and "_" both separate subtags.
    base = re.split(r"[.@]", tag, maxsplit=1)[0]
    parts = [part for part in re.split(r"[-_]", base) if part]
    return ["_".join(parts[:size]) for size in range(len(parts), 0, -1)]


def _names(locale: Locale) -> LocaleNames:
    # Only format-context names: Babel memoizes resolved aliases into locale data shared
    # between locales, which can leak one locale's stand-alone names into another's
    # (python-babel/babel#1234); format-context names are each locale's own data.
    days = locale.days["format"]
    months = locale.months["format"]
    periods = locale.day_periods["format"]["abbreviated"]
    return LocaleNames(
        locale=locale,
        days_wide=tuple(str(days["wide"][day]) for day in range(7)),
        days_abbreviated=tuple(str(days["abbreviated"][day]) for day in range(7)),
        months_wide=tuple(str(months["wide"][month]) for month in range(1, 13)),
        months_abbreviated=tuple(str(months["abbreviated"][month]) for month in range(1, 13)),
        am=str(periods["am"]),
        pm=str(periods["pm"]),
    )


@lru_cache(maxsize=_LOCALE_CACHE_SIZE)
def locale_names(tag: str | None) -> LocaleNames | None:
    """The Babel locale for a tag such as ``de-AT``, ``de_AT``, ``zh-Hant-TW``, cached.

    Falls back ``de-AT`` -> ``de`` when Babel lacks the specific locale; ``None`` when
    there is no tag or Babel knows none of its prefixes (callers then use English/C).
    """
    if not tag or len(tag) > _MAX_TAG_LENGTH:
        return None
    for identifier in _candidates(tag):
        try:
            locale = Locale.parse(identifier, sep="_")
            if locale.language == "root":
                continue
            return _names(locale)
        except Exception:  # noqa: S112 - unknown or malformed: try the shorter tag
            continue
    return None


def babel_locale(tag: str | None) -> Locale | None:
    """The cached Babel ``Locale`` for ``tag`` (see ``locale_names``), or ``None``."""
    names = locale_names(tag)
    return names.locale if names is not None else None


# -------------------------------------------------------------------------- strftime


@dataclass(frozen=True, slots=True)
class _Name:
    """A day/month name or AM/PM directive, with its glibc case and padding flags."""

    conversion: str
    upper: bool
    lower: bool
    width: int
    fill: str

    def render(self, moment: date, names: LocaleNames) -> str:
        match self.conversion:
            case "A":
                text = names.days_wide[moment.weekday()]
            case "a":
                text = names.days_abbreviated[moment.weekday()]
            case "B":
                text = names.months_wide[moment.month - 1]
            case "b" | "h":
                text = names.months_abbreviated[moment.month - 1]
            case _:  # "p"; a plain date is midnight, as for strftime
                hour = moment.hour if isinstance(moment, datetime) else 0
                text = names.am if hour < 12 else names.pm
        if self.upper:
            text = text.upper()
        elif self.lower:
            text = text.lower()
        if self.width:
            text = text.rjust(self.width, self.fill)
        # The name goes back into a strftime format.
        return text.replace("%", "%%")


@lru_cache(maxsize=_FORMAT_CACHE_SIZE)
def _strftime_plan(fmt: str) -> tuple[str | _Name, ...]:
    """Split ``fmt`` into strftime pieces and the name directives to localize."""
    plan: list[str | _Name] = []
    start = 0
    for directive in _DIRECTIVE.finditer(fmt):
        flags, width = directive["flags"], directive["width"]
        if width and int(width) > _MAX_WIDTH:
            raise DateFormatError(f"the width in {directive[0]!r} is over {_MAX_WIDTH}")
        conversion, modifier = directive["conv"], directive["mod"]
        if (conversion, modifier) not in _LOCALIZED:
            continue  # strftime's, including glibc's literal output for e.g. "%EA"
        if directive.start() > start:
            plan.append(fmt[start : directive.start()])
        pads = [flag for flag in flags if flag in "-_0"]
        # glibc: "#" lower-cases AM/PM (over "^") and upper-cases names, like "^"
        lower = "#" in flags and conversion == "p"
        plan.append(
            _Name(
                conversion=conversion,
                upper=not lower and ("^" in flags or "#" in flags),
                lower=lower,
                width=int(width or 0),
                fill="0" if pads and pads[-1] == "0" else " ",
            )
        )
        start = directive.end()
    if start < len(fmt):
        plan.append(fmt[start:])
    return tuple(plan)


def _strftime(moment: date, fmt: str, names: LocaleNames | None) -> str:
    plan = _strftime_plan(fmt)
    if names is not None and any(isinstance(piece, _Name) for piece in plan):
        fmt = "".join(
            piece if isinstance(piece, str) else piece.render(moment, names) for piece in plan
        )
    try:
        return moment.strftime(fmt)
    except (ValueError, OverflowError) as exc:  # e.g. lone surrogates
        raise DateFormatError(f"cannot use the format: {exc}") from None


# ------------------------------------------------------------------------------ CLDR


@lru_cache(maxsize=_FORMAT_CACHE_SIZE)
def _cldr_pattern(pattern: str) -> tuple[str, frozenset[str]]:
    """The pattern as a ``%``-format over field names, and its field letters.

    Stricter than Babel's parser, which formats unknown letters as literal text.
    """
    if pattern.count("'") % 2:
        raise DateFormatError(f"{pattern!r} has an unterminated quote")
    unquoted = _QUOTED.sub("", pattern)
    if unknown := sorted(set(_ASCII_LETTER.findall(unquoted)) - _CLDR_FIELDS):
        letters = ", ".join(repr(letter) for letter in unknown)
        raise DateFormatError(
            f"{pattern!r} has letters that are no CLDR date fields ({letters});"
            " quote literal text, e.g. 'at'"
        )
    parts: list[str] = []
    fields: set[str] = set()
    for kind, value in tokenize_pattern(pattern):
        if isinstance(value, str):  # kind == "chars"
            parts.append(value.replace("%", "%%"))
            continue
        char, count = value
        allowed = PATTERN_CHARS.get(char)
        if kind != "field" or char not in _CLDR_FIELDS or (allowed and count not in allowed):
            raise DateFormatError(f"{pattern!r}: {char * count!r} is not a valid field")
        fields.add(char)
        parts.append(f"%({char * count})s")
    return "".join(parts), frozenset(fields)


def _cldr(moment: date, fmt: str, *, zone: tzinfo, locale: Locale, date_filter: bool) -> str:
    if fmt in NAMED_FORMATS:
        if date_filter or not isinstance(moment, datetime):
            day = moment.date() if isinstance(moment, datetime) else moment
            return babel_format_date(day, fmt, locale=locale)
        return babel_format_datetime(moment, fmt, tzinfo=zone, locale=locale)
    pattern, fields = _cldr_pattern(fmt)
    if not isinstance(moment, datetime) and fields & _CLDR_TIME_FIELDS:
        raise DateFormatError(f"{fmt!r} needs a time of day, but the value is a date")
    # what babel.dates.DateTimePattern.apply does
    return pattern % DateTimeFormat(moment, locale)


# ------------------------------------------------------------------------------- API


def format_moment(
    moment: date, fmt: str, *, zone: tzinfo, locale: str | None, date_filter: bool = False
) -> str:
    """Format ``moment``, already converted to ``zone``, with ``fmt`` in ``locale``.

    ``fmt`` with ``%`` is ``strftime`` with localized names; without, a CLDR name
    (``short``, ``medium``, ``long``, ``full``) or pattern. ``date_filter`` makes the
    names format the date only. Raises ``DateFormatError``, and nothing else, for
    formats that cannot be used.
    """
    if len(fmt) > MAX_FORMAT_LENGTH:
        raise DateFormatError(f"the format is longer than {MAX_FORMAT_LENGTH} characters")
    names = locale_names(locale)
    if "%" in fmt or not fmt:
        return _strftime(moment, fmt, names)
    babel = names.locale if names is not None else _ENGLISH
    try:
        return _cldr(moment, fmt, zone=zone, locale=babel, date_filter=date_filter)
    except DateFormatError:
        raise
    except Exception as exc:  # Babel on data it cannot format: the author's problem
        raise DateFormatError(f"cannot format with {fmt!r}: {exc}") from None
