"""The rendering engine: syntax checks, strict variables, escaping, sandbox, filters, locales."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from tidings.template.rendering import (
    MissingVariables,
    TemplateProblem,
    check_content,
    choose_locale_content,
    default_email_layout,
    literal_html,
    render_content,
)

# ------------------------------------------------------------------------ check_content


def test_valid_content_has_no_problems() -> None:
    content = {
        "in_app": {"title": "Hi {{ name }}", "body": "Body", "action_url": None},
        "email": {"subject": "S", "html": "<p>{{ name }}</p>", "text": "{{ name }}"},
        "sms": {"text": "{% if urgent %}!{% endif %}{{ name }}"},
        "push": {"title": "T", "body": "B", "url": "{{ url }}"},
        "webhook": {"event": "x", "nested": [{"v": "{{ name }}"}, 3, True, None]},
    }
    assert check_content(content) == []


def test_syntax_errors_name_field_and_line() -> None:
    content = {
        "email": {"subject": "ok", "html": "<p>line one</p>\n<p>{{ name </p>", "text": "fine"},
        "sms": {"text": "line 1\nline 2\n{% if x %}never closed"},
    }

    problems = check_content(content, prefix="locales.de")

    by_field = {p.field: p for p in problems}
    assert set(by_field) == {"locales.de.email.html", "locales.de.sms.text"}
    assert by_field["locales.de.email.html"].line == 2
    assert by_field["locales.de.sms.text"].line == 3
    assert all(p.message for p in problems)


def test_unknown_filter_is_reported_at_check_time() -> None:
    problems = check_content({"in_app": {"title": "{{ name|shout }}"}})

    assert [(p.field, p.line) for p in problems] == [("content.in_app.title", 1)]
    assert "shout" in problems[0].message


def test_webhook_syntax_error_names_the_json_path() -> None:
    problems = check_content({"webhook": {"data": {"items": ["ok", "{{ broken"]}}})

    assert [p.field for p in problems] == ["content.webhook.data.items[1]"]


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ({"fax": {"text": "hi"}}, "content.fax"),
        ({"email": {"subject": "s", "body": "b"}}, "content.email.body"),
        ({"in_app": {"title": 42}}, "content.in_app.title"),
        ({"sms": "just text"}, "content.sms"),
        ({"webhook": ["not", "an", "object"]}, "content.webhook"),
    ],
)
def test_shape_problems_name_the_field(content: dict[str, Any], field: str) -> None:
    assert [p.field for p in check_content(content)] == [field]


def test_non_object_content_is_a_problem() -> None:
    problems = check_content("nope", prefix="locales.fr")  # type: ignore[arg-type]

    assert [p.field for p in problems] == ["locales.fr"]


def test_include_and_import_are_refused() -> None:
    problems = check_content(
        {"email": {"text": "{% include 'other' %}", "html": "{% from 'x' import y %}"}}
    )

    assert sorted(p.field for p in problems) == ["content.email.html", "content.email.text"]
    assert all("not allowed" in p.message for p in problems)


def test_problem_as_dict() -> None:
    problem = TemplateProblem("content.sms.text", "bad", line=3)

    assert problem.as_dict() == {"field": "content.sms.text", "line": 3, "message": "bad"}
    assert str(problem) == "content.sms.text, line 3: bad"


# ---------------------------------------------------------------------- render_content


def test_renders_every_channel_and_keeps_the_shape() -> None:
    content = {
        "in_app": {"title": "Hello {{ name }}", "body": "b", "action_url": None},
        "sms": {"text": "{{ name }}!"},
    }

    rendered = render_content(content, {"name": "Ada"})

    assert rendered == {
        "in_app": {"title": "Hello Ada", "body": "b", "action_url": None},
        "sms": {"text": "Ada!"},
    }


def test_missing_variables_are_all_listed() -> None:
    content = {
        "in_app": {"title": "{{ candidate_name }} for {{ job_title }}"},
        "email": {"subject": "{{ company_name }}", "text": "{{ job_title }} {{ given }}"},
    }

    with pytest.raises(MissingVariables) as caught:
        render_content(content, {"given": 1})

    assert caught.value.names == ["candidate_name", "company_name", "job_title"]
    assert caught.value.field == "content.in_app.title"
    assert "candidate_name, company_name, job_title" in str(caught.value)


def test_guarded_optional_variables_are_not_missing() -> None:
    content = {
        "sms": {
            "text": "{{ name }}{% if extra is defined %} {{ extra }}{% endif %}"
            "{{ note|default('') }}"
        }
    }

    assert render_content(content, {"name": "Ada"}) == {"sms": {"text": "Ada"}}
    with pytest.raises(MissingVariables) as caught:
        render_content(content, {})
    assert caught.value.names == ["name"]


def test_missing_member_is_named_by_its_path() -> None:
    content = {"in_app": {"title": "Hi {{ recipient.nickname }}"}}

    with pytest.raises(MissingVariables) as caught:
        render_content(content, {"recipient": {"name": "Ada"}})

    assert caught.value.names == ["recipient.nickname"]


def test_loop_variables_and_sets_are_not_reported_missing() -> None:
    content = {
        "email": {
            "text": "{% set n = items|length %}{% for i in items %}{{ i }}{% endfor %}{{ n }}"
        }
    }

    assert render_content(content, {"items": [1, 2]}) == {"email": {"text": "122"}}


def test_autoescape_only_in_email_html() -> None:
    evil = '<script>alert("x")</script> & co'
    content = {
        "in_app": {"title": "{{ v }}", "body": "{{ v }}"},
        "email": {"subject": "{{ v }}", "html": "<p>{{ v }}</p>", "text": "{{ v }}"},
        "sms": {"text": "{{ v }}"},
        "push": {"title": "{{ v }}"},
        "webhook": {"value": "{{ v }}"},
    }

    rendered = render_content(content, {"v": evil})

    assert rendered["email"]["html"] == (
        "<p>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co</p>"
    )
    assert rendered["email"]["text"] == evil
    assert rendered["email"]["subject"] == evil
    assert rendered["sms"]["text"] == evil
    assert rendered["in_app"] == {"title": evil, "body": evil}
    assert rendered["push"]["title"] == evil
    assert rendered["webhook"]["value"] == evil


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ name.__class__ }}",
        "{{ 'x' * 10000000 }}",
        "{{ [0] * 10000000 }}",
        "{{ 2 ** 100000 }}",
        "{% for i in range(1000000) %}{% endfor %}",
    ],
)
def test_sandbox_refuses_unsafe_access(source: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        render_content({"sms": {"text": source}}, {"name": "Ada"})

    assert caught.value.field == "content.sms.text"
    assert caught.value.message


def test_runtime_errors_become_problems_with_a_line() -> None:
    with pytest.raises(TemplateProblem) as caught:
        render_content({"email": {"text": "first\nsecond {{ 1 / zero }}"}}, {"zero": 0})

    assert caught.value.field == "content.email.text"
    assert caught.value.line == 2
    assert "ZeroDivisionError" in caught.value.message


def test_render_refuses_unknown_fields() -> None:
    with pytest.raises(TemplateProblem) as caught:
        render_content({"email": {"body": "x"}}, {})

    assert caught.value.field == "content.email.body"


def test_render_reports_syntax_errors() -> None:
    with pytest.raises(TemplateProblem) as caught:
        render_content({"push": {"title": "{% if %}"}}, {}, prefix="locales.de")

    assert caught.value.field == "locales.de.push.title"
    assert caught.value.line == 1


def test_webhook_renders_string_leaves_and_keeps_the_rest() -> None:
    content = {
        "webhook": {
            "event": "candidate.{{ event }}",
            "candidate": {"name": "{{ name }}", "tags": ["{{ tag }}", "fixed"]},
            "count": 3,
            "active": True,
            "missing": None,
            "html": "<b>{{ name }}</b>",
        }
    }

    rendered = render_content(content, {"event": "hired", "name": "A & B", "tag": "vip"})

    assert rendered["webhook"] == {
        "event": "candidate.hired",
        "candidate": {"name": "A & B", "tags": ["vip", "fixed"]},
        "count": 3,
        "active": True,
        "missing": None,
        "html": "<b>A & B</b>",
    }


def test_webhook_missing_variable_names_the_path() -> None:
    with pytest.raises(MissingVariables) as caught:
        render_content({"webhook": {"a": ["{{ x }}"]}}, {})

    assert caught.value.field == "content.webhook.a[0]"
    assert caught.value.names == ["x"]


def test_compiled_templates_are_reused() -> None:
    from tidings.template.sandbox import compile_source

    source = "{{ n }} unique source for the cache test"
    render_content({"sms": {"text": source}}, {"n": 1})
    before = compile_source.cache_info().hits

    for n in range(50):
        assert render_content({"sms": {"text": source}}, {"n": n})["sms"]["text"].startswith(str(n))

    assert compile_source.cache_info().hits - before == 50


# ---------------------------------------------------------------------------- filters


def _sms(source: str, variables: dict[str, Any], zone: str | None = None) -> str:
    rendered = render_content({"sms": {"text": source}}, variables, timezone=zone)
    text: str = rendered["sms"]["text"]
    return text


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # Summer time (CEST, UTC+2) before the switch on 2025-10-26, CET (UTC+1) after.
        ("2025-10-25T12:00:00Z", "2025-10-25 14:00 CEST"),
        ("2025-10-26T12:00:00Z", "2025-10-26 13:00 CET"),
        ("2025-03-30T00:30:00Z", "2025-03-30 01:30 CET"),
        ("2025-03-30T01:30:00Z", "2025-03-30 03:30 CEST"),
        ("2025-07-01T10:00:00+05:30", "2025-07-01 06:30 CEST"),
        (datetime(2025, 12, 24, 17, 0, tzinfo=UTC), "2025-12-24 18:00 CET"),
    ],
)
def test_datetime_filter_converts_to_the_recipient_zone_across_dst(
    moment: object, expected: str
) -> None:
    text = _sms('{{ t|datetime("%Y-%m-%d %H:%M %Z") }}', {"t": moment}, "Europe/Berlin")

    assert text == expected


def test_datetime_filter_defaults_to_utc_and_its_format() -> None:
    moment = datetime(2025, 10, 14, 15, 0, tzinfo=timezone(timedelta(hours=2)))

    assert _sms("{{ t|datetime }}", {"t": moment}) == "2025-10-14 13:00"
    assert _sms("{{ t|datetime }}", {"t": moment}, "Not/AZone") == "2025-10-14 13:00"


def test_date_filter_uses_the_local_calendar_day() -> None:
    late_evening_utc = "2025-10-14T23:30:00Z"

    assert _sms("{{ t|date }}", {"t": late_evening_utc}) == "2025-10-14"
    assert _sms("{{ t|date }}", {"t": late_evening_utc}, "Europe/Berlin") == "2025-10-15"
    assert _sms('{{ t|date("%d.%m.%Y") }}', {"t": "2025-10-14"}) == "14.10.2025"
    assert _sms("{{ t|date }}", {"t": date(2025, 1, 2)}, "Asia/Tokyo") == "2025-01-02"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2025-10-14T13:00:00", "no time zone offset"),
        ("next tuesday", "not an RFC 3339 timestamp"),
        (1760446800, "expected a timestamp"),
        ("2025-10-14", "date without a time"),
    ],
)
def test_datetime_filter_rejects_unusable_values(value: object, fragment: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        _sms("{{ t|datetime }}", {"t": value})

    assert fragment in caught.value.message
    assert caught.value.line == 1


def test_datetime_filter_on_a_missing_variable_is_missing() -> None:
    with pytest.raises(MissingVariables) as caught:
        _sms("{{ when|datetime }}", {})

    assert caught.value.names == ["when"]


# ---------------------------------------------------------------------------- locales

_DEFAULT = {"in_app": {"title": "Hello"}, "email": {"subject": "Hello"}}
_LOCALES = {
    "de": {"in_app": {"title": "Hallo"}, "email": {"subject": "Hallo"}},
    "de-AT": {"in_app": {"title": "Servus"}},
    "fr": {"in_app": {"title": "Bonjour"}, "email": None},
}


@pytest.mark.parametrize(
    ("locale", "title", "subject"),
    [
        ("de-AT", "Servus", "Hallo"),
        ("de_at", "Servus", "Hallo"),
        ("DE-at", "Servus", "Hallo"),
        ("de-CH", "Hallo", "Hallo"),
        ("de", "Hallo", "Hallo"),
        ("de_DE.UTF-8", "Hallo", "Hallo"),
        ("fr-CA", "Bonjour", "Hello"),
        ("en-GB", "Hello", "Hello"),
        (None, "Hello", "Hello"),
        ("", "Hello", "Hello"),
    ],
)
def test_locale_falls_back_from_region_to_language_to_default(
    locale: str | None, title: str, subject: str
) -> None:
    chosen = choose_locale_content(_DEFAULT, _LOCALES, locale)

    assert chosen["in_app"]["title"] == title
    assert chosen["email"]["subject"] == subject


def test_locale_choice_with_no_locales_is_the_default() -> None:
    assert choose_locale_content(_DEFAULT, {}, "de") is _DEFAULT
    assert choose_locale_content(_DEFAULT, None, "de") is _DEFAULT


# ----------------------------------------------------------------------------- layout


def test_literal_html_escapes_the_body_and_keeps_line_breaks() -> None:
    html = literal_html('Hi <b>Ada</b> & "team"\nline two\n\nnew paragraph', title="A <title>")

    assert "Hi &lt;b&gt;Ada&lt;/b&gt; &amp; &#34;team&#34;<br>\nline two</p>" in html
    assert '<p style="margin:0 0 16px 0;">new paragraph</p>' in html
    assert "<title>A &lt;title&gt;</title>" in html
    assert "<b>" not in html


def test_layout_is_a_self_contained_document() -> None:
    html = default_email_layout("<p>Body</p>", title="Subject", footer_html="<a href='u'>x</a>")

    assert html.startswith("<!DOCTYPE html>")
    assert '<meta name="viewport"' in html
    assert "<p>Body</p>" in html
    assert "<a href='u'>x</a>" in html
    # No external assets: nothing is fetched when the e-mail is opened.
    assert "<img" not in html
    assert "<link" not in html
    assert "src=" not in html
    assert "max-width:600px" in html


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% for i in items %}{% for j in items %}{% for k in items %}{% endfor %}{% endfor %}"
        "{% endfor %}",
    ],
)
def test_loops_share_one_iteration_budget(source: str) -> None:
    with pytest.raises(TemplateProblem, match="loops more than"):
        render_content({"in_app": {"title": source, "body": "b"}}, {"items": list(range(100))})


def test_loops_within_the_budget_render() -> None:
    body = "{% for a in [1, 2] %}{% for b in [3, 4] %}{{ a * b }},{% endfor %}{% endfor %}"
    rendered = render_content({"in_app": {"title": "t", "body": body}}, {})
    assert rendered["in_app"]["body"] == "3,4,6,8,"


def test_runaway_recursion_is_a_template_problem() -> None:
    source = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}"
    with pytest.raises(TemplateProblem, match="RecursionError"):
        render_content({"in_app": {"title": source, "body": "b"}}, {})
