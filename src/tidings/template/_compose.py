"""Building blocks for the default templates: one description, three e-mail bodies.

A default e-mail is described once (paragraphs, detail rows, a call to action) and
turned into the HTML and plain-text sources that are stored with the template. The
stored sources are self-contained Jinja2, so operators can edit them freely later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from markupsafe import Markup

from tidings.template.rendering import default_email_layout

GREETING: Final = "Hi {{ recipient.name or 'there' }},"

_P_STYLE: Final = "margin:0 0 16px 0;"
_H1_STYLE: Final = "margin:0 0 20px 0;font-size:22px;line-height:1.3;color:#111827;"
_LINK_STYLE: Final = "color:#2563eb;"
_BUTTON_STYLE: Final = (
    "display:inline-block;padding:12px 22px;background-color:#2563eb;color:#ffffff;"
    "text-decoration:none;border-radius:6px;font-weight:600;"
)
_LABEL_STYLE: Final = (
    "padding:6px 16px 6px 0;color:#6b7280;font-size:14px;white-space:nowrap;vertical-align:top;"
)
_VALUE_STYLE: Final = "padding:6px 0;font-size:15px;vertical-align:top;"

_FOOTER_HTML: Final = (
    '<a href="{{ inbox_url }}" style="color:#6b7280;">Open your inbox</a> &middot; '
    '<a href="{{ unsubscribe_url }}" style="color:#6b7280;">Unsubscribe from these e-mails</a>'
)
_FOOTER_TEXT: Final = (
    "-- \nOpen your inbox: {{ inbox_url }}\nUnsubscribe from these e-mails: {{ unsubscribe_url }}"
)


def defined(name: str) -> str:
    """A Jinja condition for an optional variable that may be absent, null or empty."""
    return f"{name} is defined and {name}"


def link(url: str, label: str) -> str:
    """An inline-styled HTML link; both arguments are Jinja source."""
    return f'<a href="{url}" style="{_LINK_STYLE}">{label}</a>'


@dataclass(frozen=True, slots=True)
class Para:
    """A paragraph: ``text`` for both bodies unless ``html`` overrides the HTML one."""

    text: str
    when: str | None = None
    html: str | None = None


@dataclass(frozen=True, slots=True)
class Row:
    """One "label: value" line in the details table."""

    label: str
    value: str
    when: str | None = None
    html: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """The call to action: a button in HTML, a labelled URL in text."""

    label: str
    url: str
    when: str | None = None


@dataclass(frozen=True, slots=True)
class Email:
    """The parts of a default e-mail, in reading order."""

    subject: str
    heading: str
    intro: Sequence[Para | str]
    details: Sequence[Row] = ()
    action: Action | None = None
    outro: Sequence[Para | str] = ()


def _guard(source: str, when: str | None) -> str:
    # Block tags on their own lines: trim_blocks/lstrip_blocks remove them cleanly.
    return f"{{% if {when} %}}\n{source}\n{{% endif %}}" if when else source


def _paras(parts: Sequence[Para | str]) -> list[Para]:
    return [part if isinstance(part, Para) else Para(part) for part in parts]


def _html(email: Email) -> str:
    blocks = [f'<h1 style="{_H1_STYLE}">{email.heading}</h1>']
    blocks += [
        _guard(p.html or f'<p style="{_P_STYLE}">{p.text}</p>', p.when) for p in _paras(email.intro)
    ]
    if email.details:
        rows = "\n".join(
            _guard(
                f'<tr><td style="{_LABEL_STYLE}">{row.label}</td>'
                f'<td style="{_VALUE_STYLE}">{row.html or row.value}</td></tr>',
                row.when,
            )
            for row in email.details
        )
        blocks.append(
            '<table role="presentation" cellpadding="0" cellspacing="0" border="0"'
            f' style="margin:0 0 20px 0;border-collapse:collapse;">\n{rows}\n</table>'
        )
    if email.action:
        button = (
            f'<p style="margin:8px 0 24px 0;"><a href="{email.action.url}"'
            f' style="{_BUTTON_STYLE}">{email.action.label}</a></p>'
        )
        blocks.append(_guard(button, email.action.when))
    blocks += [
        _guard(p.html or f'<p style="{_P_STYLE}">{p.text}</p>', p.when) for p in _paras(email.outro)
    ]
    # The subject is our own Jinja source, not text: Markup keeps the layout from escaping
    # it, and the HTML environment escapes the variables in it at render time.
    title = Markup(email.subject)  # noqa: S704
    return default_email_layout("\n".join(blocks), title=title, footer_html=_FOOTER_HTML)


def _line_end_safe(source: str) -> str:
    # trim_blocks eats the newline after a block tag, which would glue two lines of the
    # text body together; a mistake in a default template, so fail at import. Multi-line
    # sources (loops) end their own lines and are exempt.
    if "\n" not in source and source.endswith("%}"):
        raise ValueError(f"text line must not end with a block tag: {source!r}")
    return source


def _text(email: Email) -> str:
    # Every block ends with a blank line; a guarded block takes its blank line with it.
    for para in (*_paras(email.intro), *_paras(email.outro)):
        _line_end_safe(para.text)
    for row in email.details:
        _line_end_safe(row.value)
    blocks = [_guard(f"{p.text}\n", p.when) for p in _paras(email.intro)]
    if email.details:
        lines = "\n".join(_guard(f"{row.label}: {row.value}", row.when) for row in email.details)
        blocks.append(f"{lines}\n")
    if email.action:
        blocks.append(_guard(f"{email.action.label}: {email.action.url}\n", email.action.when))
    blocks += [_guard(f"{p.text}\n", p.when) for p in _paras(email.outro)]
    return "\n".join(blocks) + "\n" + _FOOTER_TEXT


def make_template(
    key: str,
    name: str,
    *,
    category: str,
    priority: str,
    channels: Sequence[str],
    title: str,
    body: str,
    action_url: str,
    email: Email,
    sms: str | None = None,
    push: bool = False,
) -> dict[str, Any]:
    """A default template record; ``push`` reuses the in-app title, body and URL."""
    content: dict[str, Any] = {
        "in_app": {"title": title, "body": body, "action_url": action_url},
        "email": {"subject": email.subject, "html": _html(email), "text": _text(email)},
    }
    if sms is not None:
        content["sms"] = {"text": sms}
    if push:
        content["push"] = {"title": title, "body": body, "url": action_url}
    return {
        "key": key,
        "name": name,
        "category": category,
        "priority": priority,
        "default_channels": list(channels),
        "content": content,
    }
