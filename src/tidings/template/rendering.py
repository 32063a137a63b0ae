"""Rendering of template content: Jinja2 in a sandbox, strict about undefined variables.

Content has one entry per channel (``in_app``, ``email``, ``sms``, ``push``, ``webhook``);
every string in it is a Jinja2 template. Only the e-mail ``html`` field is auto-escaped:
the other fields end up in plain-text places (SMS, push payloads, JSON) where HTML
entities would be visible garbage. Templates are compiled once and kept in an LRU cache,
because one send renders the same sources for up to 1,000 recipients.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from markupsafe import Markup, escape

from tidings.template.sandbox import (
    FORBIDDEN_TAGS,
    TEXT_ENV,
    FilterError,
    compile_source,
    format_date,
    format_datetime,
    render_settings,
    source_names,
    template_line,
)

__all__ = [
    "CHANNELS",
    "CHANNEL_FIELDS",
    "WEBHOOK",
    "MissingVariables",
    "TemplateProblem",
    "check_content",
    "choose_locale_content",
    "default_email_layout",
    "format_date",
    "format_datetime",
    "literal_html",
    "render_content",
]

CHANNEL_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "in_app": ("title", "body", "action_url"),
    "email": ("subject", "html", "text"),
    "sms": ("text",),
    "push": ("title", "body", "url"),
}
"""The fixed channels and their fields; ``webhook`` is free-form and not listed here."""

WEBHOOK: Final = "webhook"
CHANNELS: Final[tuple[str, ...]] = (*CHANNEL_FIELDS, WEBHOOK)

_TOP_LEVEL_UNDEFINED: Final = re.compile(r"^'(?P<name>[^']+)' is undefined$")
_MISSING_MEMBER: Final = re.compile(r"has no (?:attribute|element) '?(?P<name>[^']+?)'?$")


class TemplateProblem(Exception):
    """A template that cannot be used: bad syntax, unknown field, or a runtime failure.

    ``field`` is dotted (``content.email.html``, ``locales.de.in_app.title``);
    ``line`` is the template line when known.
    """

    def __init__(self, field: str, message: str, *, line: int | None = None) -> None:
        self.field = field
        self.line = line
        self.message = message
        where = f"{field}, line {line}" if line is not None else field
        super().__init__(f"{where}: {message}")

    def as_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready data, for validation error responses."""
        return {"field": self.field, "line": self.line, "message": self.message}


class MissingVariables(Exception):
    """Rendering needs variables that were not provided; ``names`` lists all of them."""

    def __init__(self, names: list[str] | set[str], field: str) -> None:
        self.names = sorted(set(names))
        self.field = field
        super().__init__(f"{field}: missing template variables: {', '.join(self.names)}")


# -------------------------------------------------------------------- content walking


def _leaves(content: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str, bool]]:
    """Every (field path, source, autoescape) in well-formed content; skips the rest."""
    for channel, fields in content.items():
        if channel == WEBHOOK:
            yield from _webhook_leaves(fields, f"{prefix}.{WEBHOOK}")
        elif channel in CHANNEL_FIELDS and isinstance(fields, Mapping):
            for name, source in fields.items():
                if isinstance(source, str):
                    yield f"{prefix}.{channel}.{name}", source, (channel, name) == ("email", "html")


def _webhook_leaves(value: Any, path: str) -> Iterator[tuple[str, str, bool]]:
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _webhook_leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _webhook_leaves(item, f"{path}[{index}]")


def _shape_problems(content: Any, prefix: str) -> Iterator[TemplateProblem]:
    if not isinstance(content, Mapping):
        yield TemplateProblem(prefix, "must be an object with one entry per channel")
        return
    for channel, fields in content.items():
        path = f"{prefix}.{channel}"
        if channel == WEBHOOK:
            if fields is not None and not isinstance(fields, Mapping):
                yield TemplateProblem(path, "must be a JSON object")
            continue
        if channel not in CHANNEL_FIELDS:
            yield TemplateProblem(path, f"unknown channel; expected one of {', '.join(CHANNELS)}")
            continue
        if fields is None:
            continue
        if not isinstance(fields, Mapping):
            yield TemplateProblem(path, "must be an object")
            continue
        for name, source in fields.items():
            if name not in CHANNEL_FIELDS[channel]:
                allowed = ", ".join(CHANNEL_FIELDS[channel])
                yield TemplateProblem(f"{path}.{name}", f"unknown field; expected one of {allowed}")
            elif source is not None and not isinstance(source, str):
                yield TemplateProblem(f"{path}.{name}", "must be a string")


def check_content(content: dict[str, Any], *, prefix: str = "content") -> list[TemplateProblem]:
    """Validate content without rendering it: shape, known channels and fields, syntax.

    Returns every problem found (empty when the content is usable). Syntax errors carry
    the template line. ``prefix`` names the content's place, e.g. ``locales.de``.
    """
    problems = list(_shape_problems(content, prefix))
    # Callers pass decoded JSON: the annotation is a promise the shape check verifies.
    raw: object = content
    if not isinstance(raw, Mapping):
        return problems
    for path, source, autoescape in _leaves(raw, prefix):
        try:
            compile_source(source, autoescape)
        except TemplateSyntaxError as exc:
            problems.append(TemplateProblem(path, exc.message or str(exc), line=exc.lineno))
            continue
        for node in TEXT_ENV.parse(source).find_all(FORBIDDEN_TAGS):
            # There is no loader: every template must stand alone.
            tag = type(node).__name__.lower()
            problems.append(
                TemplateProblem(path, f"'{tag}' is not allowed in templates", line=node.lineno)
            )
    return problems


# ------------------------------------------------------------------------- rendering


def _zone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata directory
        # Stored zones are validated on write; an unknown one (e.g. removed from tzdata)
        # must not block a send, so the recipient sees UTC rather than nothing.
        return UTC


def _missing_names(
    error: UndefinedError, source: str, content: Mapping[str, Any], variables: Mapping[str, Any]
) -> set[str]:
    names: set[str] = set()
    for _path, leaf, _autoescape in _leaves(content, ""):
        try:
            found = source_names(leaf)
        except TemplateSyntaxError:
            continue
        names |= found.undeclared - found.optional
    names -= set(variables)
    # The runtime failure itself is always named, guarded or not.
    message = error.message or ""
    if top := _TOP_LEVEL_UNDEFINED.match(message):
        names.add(top["name"])
    elif member := _MISSING_MEMBER.search(message):
        paths = [p for p in source_names(source).paths if p.rsplit(".", 1)[-1] == member["name"]]
        names.add(paths[0] if len(set(paths)) == 1 else member["name"])
    elif not names:
        names.add(message or "unknown")
    return names


def _render_source(
    source: str,
    autoescape: bool,
    path: str,
    variables: Mapping[str, Any],
    content: Mapping[str, Any],
) -> str:
    try:
        template = compile_source(source, autoescape)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(path, exc.message or str(exc), line=exc.lineno) from None
    try:
        return template.render(variables)
    except UndefinedError as exc:
        raise MissingVariables(_missing_names(exc, source, content, variables), path) from None
    except SecurityError as exc:
        line = template_line(exc.__traceback__)
        raise TemplateProblem(path, f"not allowed in templates: {exc}", line=line) from None
    except FilterError as exc:
        raise TemplateProblem(path, str(exc), line=template_line(exc.__traceback__)) from None
    except Exception as exc:
        # Template authors can write anything (1/0, calling a string...): their mistake
        # becomes a problem report, never a server error.
        line = template_line(exc.__traceback__)
        raise TemplateProblem(path, f"{type(exc).__name__}: {exc}", line=line) from None


def _render_webhook(value: Any, path: str, render: _Renderer) -> Any:
    if isinstance(value, str):
        return render(value, False, path)
    if isinstance(value, Mapping):
        return {key: _render_webhook(item, f"{path}.{key}", render) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_webhook(item, f"{path}[{i}]", render) for i, item in enumerate(value)]
    return value


class _Renderer:
    def __init__(self, content: Mapping[str, Any], variables: Mapping[str, Any]) -> None:
        self._content = content
        self._variables = variables

    def __call__(self, source: str, autoescape: bool, path: str) -> str:
        return _render_source(source, autoescape, path, self._variables, self._content)


def render_content(
    content: dict[str, Any],
    variables: dict[str, Any],
    *,
    timezone: str | None = None,
    locale: str | None = None,
    channel_locales: Mapping[str, str | None] | None = None,
    prefix: str = "content",
) -> dict[str, Any]:
    """Render every present field of ``content`` with ``variables``.

    Returns the same shape with rendered strings (webhook values keep their non-string
    leaves). ``timezone`` (an IANA name; UTC when missing or unknown) and ``locale``
    drive the ``datetime`` and ``date`` filters; ``channel_locales`` overrides the
    locale per channel (see ``content_locales``).

    Raises ``MissingVariables`` naming every variable the content needs but did not
    get, and ``TemplateProblem`` for bad syntax, unknown channels or fields, sandbox
    violations and other runtime errors.
    """
    if problem := next(_shape_problems(content, prefix), None):
        raise problem
    render = _Renderer(content, variables)
    zone = _zone(timezone)
    rendered: dict[str, Any] = {}
    for channel, fields in content.items():
        channel_locale = channel_locales.get(channel) if channel_locales is not None else locale
        with render_settings(zone, channel_locale):
            path = f"{prefix}.{channel}"
            if channel == WEBHOOK:
                rendered[channel] = _render_webhook(fields, path, render)
            elif fields is None:
                rendered[channel] = None
            else:
                rendered[channel] = {
                    name: None
                    if source is None
                    else render(source, (channel, name) == ("email", "html"), f"{path}.{name}")
                    for name, source in fields.items()
                }
    return rendered


# --------------------------------------------------------------------------- locales


def _locale_key(tag: str) -> str:
    # "de_AT.UTF-8@euro" and "de-at" are the same locale for our purposes.
    return re.split(r"[.@]", tag, maxsplit=1)[0].replace("_", "-").lower()


def content_locales(
    content: dict[str, Any], locales: dict[str, Any] | None, locale: str | None
) -> dict[str, str | None]:
    """The locale that dates are written in, per channel: the recipient's locale where a
    translation of that channel was chosen, none (the default language) where the
    default content stays, so a sentence never mixes two languages."""
    chosen: dict[str, str | None] = dict.fromkeys(content)
    if not locale or not locales:
        return chosen
    by_key = {_locale_key(key): value for key, value in locales.items()}
    subtags = _locale_key(locale).split("-")
    for size in range(1, len(subtags) + 1):
        specific = by_key.get("-".join(subtags[:size]))
        if isinstance(specific, Mapping):
            for channel, value in specific.items():
                if value is not None:
                    chosen[channel] = locale
    return chosen


def choose_locale_content(
    content: dict[str, Any], locales: dict[str, Any] | None, locale: str | None
) -> dict[str, Any]:
    """Pick the content for ``locale``: ``de-AT``, then ``de``, then the default content.

    Subtags match case-insensitively (``de_at`` finds ``de-AT``). The choice is made per
    channel: a locale that translates only the e-mail keeps the default in-app text, so
    a partial translation never silences a channel.
    """
    if not locale or not locales:
        return content
    by_key = {_locale_key(key): value for key, value in locales.items()}
    subtags = _locale_key(locale).split("-")
    chosen = dict(content)
    # From the least to the most specific, so the most specific content wins.
    for size in range(1, len(subtags) + 1):
        specific = by_key.get("-".join(subtags[:size]))
        if isinstance(specific, Mapping):
            chosen.update({ch: value for ch, value in specific.items() if value is not None})
    return chosen


# ---------------------------------------------------------------------------- layout

_FONT = "-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"


def default_email_layout(
    body_html: str, *, title: str, footer_html: str = "", lang: str = "en"
) -> str:
    """Wrap an already-safe HTML fragment in a small responsive e-mail layout.

    Inline styles only and no external assets, so it looks the same in clients that
    strip ``<style>`` or block images. ``title`` is escaped unless it is ``Markup``
    (default templates pass their Jinja subject source that way); ``footer_html`` is
    trusted like the body.
    """
    footer = (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"'
        ' style="max-width:600px;">\n<tr><td style="padding:16px 24px;font-family:'
        f'{_FONT};font-size:12px;line-height:1.5;color:#6b7280;text-align:center;">\n'
        f"{footer_html}\n</td></tr>\n</table>\n"
        if footer_html
        else ""
    )
    return (
        f'<!DOCTYPE html>\n<html lang="{escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="x-apple-disable-message-reformatting">\n'
        '<meta name="color-scheme" content="light">\n'
        f"<title>{escape(title)}</title>\n</head>\n"
        '<body style="margin:0;padding:0;background-color:#f4f5f7;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"'
        ' style="background-color:#f4f5f7;">\n<tr><td align="center" style="padding:24px 12px;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"'
        ' style="max-width:600px;background-color:#ffffff;border:1px solid #e3e6ea;'
        'border-radius:8px;">\n<tr><td style="padding:28px 24px;font-family:'
        f'{_FONT};font-size:16px;line-height:1.5;color:#1f2933;">\n'
        f"{body_html}\n</td></tr>\n</table>\n{footer}</td></tr>\n</table>\n</body>\n</html>\n"
    )


def literal_html(body: str, *, title: str, footer_html: str = "") -> str:
    """HTML for a literal (non-template) send: the escaped body in the default layout.

    Blank lines separate paragraphs and single newlines become ``<br>``, so plain text
    written for the in-app inbox reads the same in an e-mail.
    """
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    paragraphs = [part.strip("\n") for part in re.split(r"\n\s*\n", text) if part.strip()]
    # Markup all the way: ``str + Markup`` would escape the tags (Markup.__radd__ wins).
    line_break = Markup("<br>\n")
    html = Markup("\n").join(
        Markup('<p style="margin:0 0 16px 0;">{}</p>').format(line_break.join(para.split("\n")))
        for para in paragraphs
    )
    return default_email_layout(html, title=title, footer_html=footer_html)
