"""The Jinja2 engine behind template rendering: sandbox, filters, compile cache, analysis.

Two sandboxed environments share everything but auto-escaping, which is on only for
e-mail HTML. Compiled templates are cached by (source, autoescape) because one send
renders the same sources for up to 1,000 recipients.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from types import TracebackType
from typing import Any, Final

from jinja2 import StrictUndefined, Template, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import SandboxedEnvironment

from tidings.template.dates import DateFormatError, format_moment

_CACHE_SIZE: Final = 2048
# Limits against templates that would exhaust memory or the CPU. One range() is bounded
# by the sandbox's MAX_RANGE, but nested loops multiply; every loop of a render draws
# from one iteration budget instead.
LOOP_BUDGET: Final = 100_000
_LOOP_FILTER: Final = "tidings_counted_loop"
_MAX_REPEAT_LENGTH: Final = 100_000
_MAX_POWER_BITS: Final = 4096
_TEMPLATE_FILENAME: Final = "<template>"
_OPTIONAL_TESTS: Final = frozenset({"defined", "undefined"})
_OPTIONAL_FILTERS: Final = frozenset({"default", "d"})
FORBIDDEN_TAGS: Final = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
"""Tags that need a loader; templates must stand alone."""


class FilterError(ValueError):
    """A filter got a value it cannot handle; its message is shown to the template author."""


@dataclass(frozen=True, slots=True)
class _RenderSettings:
    zone: tzinfo
    locale: str | None


# Filters are shared by every render, so the recipient's zone and locale travel in a
# context variable rather than in the template namespace, where templates could see
# or shadow them.
_SETTINGS: contextvars.ContextVar[_RenderSettings] = contextvars.ContextVar(
    "tidings_render_settings"
)
_DEFAULT_SETTINGS: Final = _RenderSettings(zone=UTC, locale=None)
_LOOPS_LEFT: contextvars.ContextVar[list[int]] = contextvars.ContextVar("tidings_loops_left")


def _counted_loop(iterable: Any) -> Iterator[Any]:
    """Yield from ``iterable`` while the render's iteration budget lasts."""
    budget = _LOOPS_LEFT.get(None)
    if budget is None:  # rendering outside render_settings(): give this loop a budget
        budget = [LOOP_BUDGET]
    for item in iterable:
        budget[0] -= 1
        if budget[0] < 0:
            raise SecurityError(f"the template loops more than {LOOP_BUDGET} times")
        yield item


class _CountingCodeGenerator(CodeGenerator):
    """Compiles every ``{% for %}`` to iterate through the budget filter."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:  # noqa: N802
        # before generation: the generator resolves the filters a template uses up front
        for loop in node.find_all(nodes.For):
            if not (isinstance(loop.iter, nodes.Filter) and loop.iter.name == _LOOP_FILTER):
                loop.iter = nodes.Filter(
                    loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.iter.lineno
                )
        super().visit_Template(node, frame)


# --------------------------------------------------------------------------- filters


def _as_moment(value: Any, filter_name: str) -> datetime | date:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, datetime | date):
        moment: datetime | date = value
    elif isinstance(value, str):
        try:
            text = value.strip()
            moment = (
                date.fromisoformat(text)
                if len(text) == 10
                else datetime.fromisoformat(text.upper())
            )
        except ValueError:
            raise FilterError(f"{filter_name}: {value!r} is not an RFC 3339 timestamp") from None
    else:
        raise FilterError(f"{filter_name}: expected a timestamp, got {type(value).__name__}")
    if isinstance(moment, datetime) and moment.utcoffset() is None:
        raise FilterError(f"{filter_name}: {value!r} has no time zone offset")
    return moment


def _in_zone(moment: datetime, zone: tzinfo, filter_name: str) -> datetime:
    try:
        return moment.astimezone(zone)
    except (OverflowError, ValueError):  # e.g. 9999-12-31T23:30Z east of UTC
        raise FilterError(f"{filter_name}: {moment.isoformat()} is out of range") from None


def _check_format(fmt: Any) -> str:
    if isinstance(fmt, Undefined):
        fmt._fail_with_undefined_error()
    return str(fmt)


def format_datetime(value: Any, fmt: str, *, zone: tzinfo, locale: str | None) -> str:
    """Format an aware datetime (or RFC 3339 string) in ``zone`` and ``locale``.

    ``fmt`` is a ``strftime`` format whose day and month names and AM/PM follow
    ``locale``, or without ``%`` a CLDR format name (``short``, ``medium``, ``long``,
    ``full``) or pattern (``EEEE d MMMM y HH:mm``); see ``tidings.template.dates``. No
    locale, or one Babel lacks, means English. Unusable values and formats raise
    ``FilterError``.
    """
    moment = _as_moment(value, "datetime")
    if not isinstance(moment, datetime):
        raise FilterError(f"datetime: {value!r} is a date without a time; use the date filter")
    try:
        local = _in_zone(moment, zone, "datetime")
        return format_moment(local, _check_format(fmt), zone=zone, locale=locale)
    except DateFormatError as exc:
        raise FilterError(f"datetime: {exc}") from None


def format_date(value: Any, fmt: str, *, zone: tzinfo, locale: str | None) -> str:
    """Format the calendar date of a timestamp as seen in ``zone``; plain dates pass as-is.

    Formats as for ``format_datetime``; the CLDR names format the date alone.
    """
    moment = _as_moment(value, "date")
    if isinstance(moment, datetime):
        moment = _in_zone(moment, zone, "date")
    try:
        return format_moment(moment, _check_format(fmt), zone=zone, locale=locale, date_filter=True)
    except DateFormatError as exc:
        raise FilterError(f"date: {exc}") from None


def _datetime_filter(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    settings = _SETTINGS.get(_DEFAULT_SETTINGS)
    return format_datetime(value, fmt, zone=settings.zone, locale=settings.locale)


def _date_filter(value: Any, fmt: str = "%Y-%m-%d") -> str:
    settings = _SETTINGS.get(_DEFAULT_SETTINGS)
    return format_date(value, fmt, zone=settings.zone, locale=settings.locale)


# ---------------------------------------------------------------------- environments


class _Sandbox(SandboxedEnvironment):
    """The stock sandbox plus limits on ``*`` and ``**``, which can build huge values."""

    intercepted_binops = frozenset({"*", "**"})
    code_generator_class = _CountingCodeGenerator

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(count, int)
                    and len(seq) * count > _MAX_REPEAT_LENGTH
                ):
                    raise SecurityError("the result of '*' would be too long")
        elif (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and left.bit_length() * right > _MAX_POWER_BITS
        ):
            raise SecurityError("the result of '**' would be too large")
        return super().call_binop(context, operator, left, right)


def _environment(*, autoescape: bool) -> _Sandbox:
    env = _Sandbox(
        undefined=StrictUndefined,
        autoescape=autoescape,
        # Block tags on their own line must not leave blank lines in text e-mails and SMS.
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters[_LOOP_FILTER] = _counted_loop
    env.filters["datetime"] = _datetime_filter
    env.filters["date"] = _date_filter
    return env


TEXT_ENV: Final = _environment(autoescape=False)
HTML_ENV: Final = _environment(autoescape=True)


@lru_cache(maxsize=_CACHE_SIZE)
def compile_source(source: str, autoescape: bool) -> Template:
    """The compiled template for ``source``; raises ``TemplateSyntaxError``."""
    env = HTML_ENV if autoescape else TEXT_ENV
    return env.from_string(source)


@dataclass(frozen=True, slots=True)
class SourceNames:
    """What a source reads from its context, and which of those reads are guarded."""

    undeclared: frozenset[str]
    optional: frozenset[str]
    paths: tuple[str, ...]


@lru_cache(maxsize=_CACHE_SIZE // 4)
def source_names(source: str) -> SourceNames:
    """Static analysis of one source; only needed when something is missing."""
    ast = TEXT_ENV.parse(source)
    optional = {
        test.node.name
        for test in ast.find_all(nodes.Test)
        if test.name in _OPTIONAL_TESTS and isinstance(test.node, nodes.Name)
    } | {
        flt.node.name
        for flt in ast.find_all(nodes.Filter)
        if flt.name in _OPTIONAL_FILTERS and isinstance(flt.node, nodes.Name)
    }
    undeclared = meta.find_undeclared_variables(ast) - set(TEXT_ENV.globals)
    return SourceNames(frozenset(undeclared), frozenset(optional), tuple(_member_paths(ast)))


def _member_paths(ast: nodes.Template) -> Iterator[str]:
    """Dotted paths such as ``recipient.name`` for naming a missing member."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        parts: list[str] = []
        current: nodes.Node = node
        while isinstance(current, nodes.Getattr | nodes.Getitem):
            if isinstance(current, nodes.Getattr):
                parts.append(current.attr)
            elif isinstance(current.arg, nodes.Const):
                parts.append(str(current.arg.value))
            else:
                break
            current = current.node
        else:
            if isinstance(current, nodes.Name):
                yield ".".join([current.name, *reversed(parts)])


def template_line(tb: TracebackType | None) -> int | None:
    """The template line where a render failed, from Jinja's rewritten traceback."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


@contextmanager
def render_settings(zone: tzinfo, locale: str | None) -> Iterator[None]:
    """Make ``zone`` and ``locale`` visible to the filters for the renders inside."""
    token = _SETTINGS.set(_RenderSettings(zone=zone, locale=locale))
    loops = _LOOPS_LEFT.set([LOOP_BUDGET])
    try:
        yield
    finally:
        _LOOPS_LEFT.reset(loops)
        _SETTINGS.reset(token)
