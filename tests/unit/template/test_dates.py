"""Locale-aware ``date`` and ``datetime`` filters (Babel/CLDR).

strftime formats keep working with localized day and month names and AM/PM; formats
without ``%`` are CLDR names or patterns; locale tags fall back de-AT -> de -> English;
hostile formats only ever raise ``FilterError``; parsed locales are cached.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import babel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import Service, Tokens
from tidings.template.dates import MAX_FORMAT_LENGTH, babel_locale, locale_names
from tidings.template.rendering import TemplateProblem, render_content
from tidings.template.sandbox import FilterError, format_date, format_datetime

BERLIN = ZoneInfo("Europe/Berlin")
MARCH = "2026-03-30T12:05:00Z"  # Monday 14:05 CEST in Berlin
JANUARY = "2026-01-15T09:00:00Z"  # Thursday 10:00 CET in Berlin
NNBSP = "\u202f"  # CLDR puts a narrow no-break space before AM/PM in English
APOSTROPHE = "\u2019"  # French CLDR data writes the typographic apostrophe

LOCALES: list[str | None] = ["de", "de-AT", "fr", "en-US", "ja", "xx", None]


def _sms(source: str, variables: dict[str, Any], locale: str | None) -> str:
    rendered = render_content(
        {"sms": {"text": source}}, variables, timezone="Europe/Berlin", locale=locale
    )
    text: str = rendered["sms"]["text"]
    return text


# ------------------------------------------------------------------- strftime names


@pytest.mark.parametrize(
    ("locale", "long_form", "short_form", "january"),
    [
        (
            "de",
            "Montag, 30 März 2026 at 14:05 CEST",
            "Mo. 30 März 02:05 PM",
            "Donnerstag 15 Januar / Do. Jan.",
        ),
        (
            "de-AT",
            "Montag, 30 März 2026 at 14:05 CEST",
            "Mo. 30 März 02:05 PM",
            "Donnerstag 15 Jänner / Do. Jän.",
        ),
        (
            "fr",
            "lundi, 30 mars 2026 at 14:05 CEST",
            "lun. 30 mars 02:05 PM",
            "jeudi 15 janvier / jeu. janv.",
        ),
        (
            "en-US",
            "Monday, 30 March 2026 at 14:05 CEST",
            "Mon 30 Mar 02:05 PM",
            "Thursday 15 January / Thu Jan",
        ),
        (
            "ja",
            "月曜日, 30 3月 2026 at 14:05 CEST",
            "月 30 3月 02:05 午後",
            "木曜日 15 1月 / 木 1月",
        ),
        (
            "xx",
            "Monday, 30 March 2026 at 14:05 CEST",
            "Mon 30 Mar 02:05 PM",
            "Thursday 15 January / Thu Jan",
        ),
        (
            None,
            "Monday, 30 March 2026 at 14:05 CEST",
            "Mon 30 Mar 02:05 PM",
            "Thursday 15 January / Thu Jan",
        ),
    ],
)
def test_strftime_names_follow_the_locale(
    locale: str | None, long_form: str, short_form: str, january: str
) -> None:
    # the default templates' formats; %Z stays the zone's abbreviation
    source = (
        '{{ t|datetime("%A, %d %B %Y at %H:%M %Z") }}|{{ t|datetime("%a %d %b %I:%M %p") }}'
        '|{{ j|datetime("%A %d %B / %a %b") }}'
    )
    assert _sms(source, {"t": MARCH, "j": JANUARY}, locale) == (
        f"{long_form}|{short_form}|{january}"
    )


@pytest.mark.parametrize("locale", [None, "xx", "xx-YY", "123", "", "not a locale"])
def test_without_a_known_locale_strftime_is_unchanged(locale: str | None) -> None:
    moment = datetime(2026, 9, 7, 21, 0, tzinfo=UTC)
    for fmt in ("%A %a %B %b %h %p", "%c|%x|%X", "%-d.%-m.%Y %^A %#p %10B", "%%A %Q", "%"):
        assert format_datetime(moment, fmt, zone=UTC, locale=locale) == moment.strftime(fmt)


@pytest.mark.parametrize("locale", ["en", "en-US"])
@pytest.mark.parametrize("day", range(1, 366, 17))
def test_english_names_are_the_c_names(locale: str, day: int) -> None:
    moment = datetime.fromordinal(date(2026, 1, 1).toordinal() + day - 1).replace(
        hour=day % 24, tzinfo=UTC
    )
    # flags, widths and E/O modifiers as glibc's strftime treats them
    fmt = "%A %a %B %b %h %p|%^A %#a %#p %^p|%12A|%-12B|%012b|%_6p|%OB %Ob %Op %EA|%%A"
    assert format_datetime(moment, fmt, zone=UTC, locale=locale) == moment.strftime(fmt)
    assert format_date(moment.date(), fmt, zone=UTC, locale=locale) == moment.date().strftime(fmt)


def test_other_directives_stay_strftime() -> None:
    moment = datetime(2026, 3, 30, 12, 5, 9, tzinfo=UTC)
    assert (
        format_datetime(moment, "%Y-%m-%d %H:%M:%S %z %j %U %%B", zone=BERLIN, locale="de")
        == "2026-03-30 14:05:09 +0200 089 13 %B"
    )


def test_a_name_with_flags_and_width_in_german() -> None:
    moment = datetime(2026, 3, 30, 12, 5, tzinfo=UTC)
    assert format_datetime(moment, "%^A|%8B|%-b", zone=UTC, locale="de") == "MONTAG|    März|März"


# ------------------------------------------------------------------------ CLDR forms


@pytest.mark.parametrize(
    ("locale", "fmt", "expected"),
    [
        ("de", "full", "Montag, 30. März 2026, 14:05:00 Mitteleuropäische Sommerzeit"),
        ("de", "long", "30. März 2026, 14:05:00 MESZ"),
        ("de", "medium", "30.03.2026, 14:05:00"),
        ("de", "short", "30.03.26, 14:05"),
        ("de", "EEEE d MMMM y HH:mm", "Montag 30 März 2026 14:05"),
        ("de-AT", "full", "Montag, 30. März 2026, 14:05:00 Mitteleuropäische Sommerzeit"),
        ("de-AT", "EEEE d. MMMM y", "Montag 30. März 2026"),
        (
            "fr",
            "full",
            f"lundi 30 mars 2026, 14:05:00 heure d{APOSTROPHE}été d{APOSTROPHE}Europe centrale",
        ),
        ("fr", "short", "30/03/2026 14:05"),
        ("fr", "EEEE d MMMM y 'à' HH:mm", "lundi 30 mars 2026 à 14:05"),
        ("en-US", "full", f"Monday, March 30, 2026, 2:05:00{NNBSP}PM Central European Summer Time"),
        ("en-US", "short", f"3/30/26, 2:05{NNBSP}PM"),
        ("en-US", "EEEE d MMMM y HH:mm", "Monday 30 March 2026 14:05"),
        ("ja", "full", "2026年3月30日月曜日 14時05分00秒 中央ヨーロッパ夏時間"),
        ("ja", "short", "2026/03/30 14:05"),
        ("ja", "EEEE d MMMM y HH:mm", "月曜日 30 3月 2026 14:05"),
        ("xx", "full", f"Monday, March 30, 2026, 2:05:00{NNBSP}PM Central European Summer Time"),
        (None, "full", f"Monday, March 30, 2026, 2:05:00{NNBSP}PM Central European Summer Time"),
        (None, "medium", f"Mar 30, 2026, 2:05:00{NNBSP}PM"),
        (
            None,
            "EEEE d MMMM y HH:mm zzzz",
            "Monday 30 March 2026 14:05 Central European Summer Time",
        ),
        (None, "h 'o''clock' a", "2 o'clock PM"),
    ],
)
def test_cldr_datetime_formats(locale: str | None, fmt: str, expected: str) -> None:
    assert _sms(f"{{{{ t|datetime({fmt!r}) }}}}", {"t": MARCH}, locale) == expected


@pytest.mark.parametrize(
    ("locale", "fmt", "expected"),
    [
        ("de", "full", "Montag, 30. März 2026"),
        ("de", "long", "30. März 2026"),
        ("de", "short", "30.03.26"),
        ("de-AT", "d. MMMM y", "15. Jänner 2026"),
        ("fr", "full", "lundi 30 mars 2026"),
        ("en-US", "full", "Monday, March 30, 2026"),
        ("ja", "full", "2026年3月30日月曜日"),
        ("xx", "long", "March 30, 2026"),
        (None, "medium", "Mar 30, 2026"),
        (None, "EEEE d MMMM y", "Monday 30 March 2026"),
    ],
)
def test_cldr_date_formats(locale: str | None, fmt: str, expected: str) -> None:
    value = JANUARY if "Jänner" in expected else MARCH
    assert _sms(f"{{{{ t|date({fmt!r}) }}}}", {"t": value}, locale) == expected


def test_cldr_date_formats_take_plain_dates() -> None:
    assert format_date(date(2026, 3, 30), "full", zone=BERLIN, locale="de") == (
        "Montag, 30. März 2026"
    )
    assert format_date("2026-03-30", "EEEE, d. MMMM", zone=BERLIN, locale="de") == (
        "Montag, 30. März"
    )


# ------------------------------------------------------------------------------- DST


@pytest.mark.parametrize(
    ("moment", "strftime_de", "cldr_de", "full_en"),
    [
        (  # the last hour of winter time, then the first of summer time
            "2026-03-29T00:30:00Z",
            "Sonntag 29 März 01:30 CET",
            "Sonntag, 29. März 2026, 01:30:00 Mitteleuropäische Normalzeit",
            f"Sunday, March 29, 2026, 1:30:00{NNBSP}AM Central European Standard Time",
        ),
        (
            "2026-03-29T01:30:00Z",
            "Sonntag 29 März 03:30 CEST",
            "Sonntag, 29. März 2026, 03:30:00 Mitteleuropäische Sommerzeit",
            f"Sunday, March 29, 2026, 3:30:00{NNBSP}AM Central European Summer Time",
        ),
        (  # 02:30 twice in October: summer time, then winter time
            "2026-10-25T00:30:00Z",
            "Sonntag 25 Oktober 02:30 CEST",
            "Sonntag, 25. Oktober 2026, 02:30:00 Mitteleuropäische Sommerzeit",
            f"Sunday, October 25, 2026, 2:30:00{NNBSP}AM Central European Summer Time",
        ),
        (
            "2026-10-25T01:30:00Z",
            "Sonntag 25 Oktober 02:30 CET",
            "Sonntag, 25. Oktober 2026, 02:30:00 Mitteleuropäische Normalzeit",
            f"Sunday, October 25, 2026, 2:30:00{NNBSP}AM Central European Standard Time",
        ),
    ],
)
def test_berlin_dst_transitions(moment: str, strftime_de: str, cldr_de: str, full_en: str) -> None:
    source = '{{ t|datetime("%A %d %B %H:%M %Z") }}|{{ t|datetime("full") }}'
    assert _sms(source, {"t": moment}, "de") == f"{strftime_de}|{cldr_de}"
    assert _sms('{{ t|datetime("full") }}', {"t": moment}, None) == full_en


def test_cldr_zone_fields_follow_dst() -> None:
    source = '{{ t|datetime("HH:mm z") }}'
    assert _sms(source, {"t": "2026-03-29T00:30:00Z"}, "de") == "01:30 MEZ"
    assert _sms(source, {"t": "2026-03-29T01:30:00Z"}, "de") == "03:30 MESZ"


def test_the_date_is_the_one_in_the_recipients_zone() -> None:
    # 23:30 UTC on Saturday is 00:30 on Sunday in Berlin
    source = '{{ t|date("full") }}|{{ t|date("%A %d %B") }}'
    assert _sms(source, {"t": "2026-03-28T23:30:00Z"}, "de") == (
        "Sonntag, 29. März 2026|Sonntag 29 März"
    )


# ------------------------------------------------------------------------ locale tags


@pytest.mark.parametrize(
    ("tag", "identifier"),
    [
        ("de", "de"),
        ("de-AT", "de_AT"),
        ("de_AT", "de_AT"),
        ("de-at", "de_AT"),
        ("de_AT.UTF-8@euro", "de_AT"),
        ("pt-BR", "pt_BR"),
        ("zh-Hant-TW", "zh_Hant_TW"),
        ("zh_Hant_TW", "zh_Hant_TW"),
        ("en-US", "en_US"),
        ("de-XX", "de"),  # Babel lacks it: the language
        ("de-AT-x-private", "de_AT"),
        ("ja", "ja"),
        ("xx", None),
        ("xx-DE", None),
        ("123", None),
        ("", None),
        (None, None),
        ("root", None),
        ("d" * 100, None),
    ],
)
def test_locale_tags_normalize_and_fall_back(tag: str | None, identifier: str | None) -> None:
    parsed = babel_locale(tag)
    assert (str(parsed) if parsed is not None else None) == identifier


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("pt-BR", "segunda-feira, 30 março 2026"),
        ("zh-Hant-TW", "星期一, 30 3月 2026"),
        ("de-CH", "Montag, 30 März 2026"),
    ],
)
def test_more_locales(tag: str, expected: str) -> None:
    assert format_datetime(MARCH, "%A, %d %B %Y", zone=BERLIN, locale=tag) == expected


def test_format_context_names_do_not_leak_between_locales() -> None:
    # Babel can leak one locale's stand-alone names into another's (babel#1234); the
    # strftime names come from format-context data, which stays each locale's own.
    for tag in ("ja", "he", "zh-Hant-TW"):
        format_datetime(MARCH, "LLLL LLL cccc ccc", zone=BERLIN, locale=tag)
    assert format_datetime(MARCH, "%B %b %A %a", zone=BERLIN, locale="pt-BR") == (
        "março mar. segunda-feira seg."
    )
    assert format_datetime(MARCH, "%B %b %A %a", zone=BERLIN, locale="fr") == (
        "mars mars lundi lun."
    )


def test_locales_are_parsed_once_per_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = babel.Locale.parse

    def counting_parse(identifier: Any, *args: Any, **kwargs: Any) -> babel.Locale:
        if isinstance(identifier, str):  # Babel passes Locale objects through it, cheaply
            calls.append(identifier)
        return original(identifier, *args, **kwargs)

    locale_names.cache_clear()
    monkeypatch.setattr(babel.Locale, "parse", counting_parse)
    source = '{{ t|datetime("%a %d %b %H:%M %Z") }} {{ t|date("long") }}'
    start = datetime(2026, 3, 30, 12, 5, tzinfo=UTC)
    for minutes in range(10_000):  # one fan-out, each recipient with its own time
        _sms(source, {"t": start + timedelta(minutes=minutes)}, "de-AT")
    assert calls == ["de_AT"]
    info = locale_names.cache_info()
    assert (info.misses, info.hits) == (1, 20_000 - 1)


# -------------------------------------------------------------------- hostile formats


@pytest.mark.parametrize(
    ("fmt", "fragment"),
    [
        ("tomorrow", "no CLDR date fields ('o', 'r', 't')"),
        ("gggg", "no CLDR date fields ('g')"),
        ("EEEEEEE", "'EEEEEEE' is not a valid field"),
        ("MMMMMM", "is not a valid field"),
        ("'open quote", "unterminated quote"),
        ("HH:mm 'Uhr", "unterminated quote"),
        ("%" * (MAX_FORMAT_LENGTH + 1), "longer than 256"),
        ("y" * 10_000, "longer than 256"),
        ("EEEE " * 1000, "longer than 256"),
        ("%999999999A", "width"),
        ("%999999999d", "width"),
        ("%A \ud800", "cannot use the format"),
        ("None", "no CLDR date fields"),
    ],
)
@pytest.mark.parametrize("locale", ["de", None])
def test_hostile_formats_are_filter_errors(fmt: str, fragment: str, locale: str | None) -> None:
    for function, name in ((format_datetime, "datetime"), (format_date, "date")):
        with pytest.raises(FilterError) as caught:
            function(MARCH, fmt, zone=BERLIN, locale=locale)
        assert str(caught.value).startswith(f"{name}: ")
        assert fragment in str(caught.value)


def test_time_fields_on_a_plain_date_are_a_filter_error() -> None:
    with pytest.raises(FilterError, match="needs a time of day"):
        format_date(date(2026, 3, 30), "d MMM HH:mm", zone=BERLIN, locale="de")
    # a timestamp through the date filter keeps its time, as with strftime
    assert format_date(MARCH, "d MMM HH:mm", zone=BERLIN, locale="de") == "30 März 14:05"


def test_a_hostile_format_in_a_template_is_a_problem_naming_the_field() -> None:
    with pytest.raises(TemplateProblem) as caught:
        _sms('Hi\n{{ t|datetime("EEEEEEEE") }}', {"t": MARCH}, "de")
    assert caught.value.field == "content.sms.text"
    assert caught.value.line == 2
    assert caught.value.message.startswith("datetime: ")


def test_a_format_from_data_is_checked_too() -> None:
    with pytest.raises(TemplateProblem, match="longer than 256"):
        _sms("{{ t|datetime(fmt) }}", {"t": MARCH, "fmt": "y" * 5000}, "de")
    assert _sms("{{ t|datetime(fmt) }}", {"t": MARCH, "fmt": "full"}, "de").startswith("Montag")


_FORMAT_TEXT = st.text(
    alphabet=st.sampled_from(list("%'EMLdyhHmsazZvVGQqwWDFecbBkKSAxXOpgtuY-_0^#: .,/9\ud800ä"))
    | st.characters(),
    max_size=40,
) | st.sampled_from(["short", "medium", "long", "full"])


@settings(max_examples=400, deadline=None)
@given(
    fmt=_FORMAT_TEXT,
    locale=st.sampled_from(["de", "de-AT", "ja", "ar", "fi", "he", "xx", None]),
    value=st.sampled_from([MARCH, "2026-03-29", datetime(1, 1, 1, tzinfo=UTC), date(9999, 12, 31)]),
)
def test_any_format_either_formats_or_is_a_filter_error(
    fmt: str, locale: str | None, value: Any
) -> None:
    for function in (format_datetime, format_date):
        try:
            result = function(value, fmt, zone=BERLIN, locale=locale)
        except FilterError:
            continue
        assert isinstance(result, str)


# --------------------------------------------------------------------------- preview


_WHEN_CONTENT = {
    "in_app": {
        "title": '{{ when|datetime("%A, %d %B %Y, %H:%M") }}',
        "body": '{{ when|date("full") }} / {{ when|datetime("EEEE d MMMM y") }}',
    }
}
# German and French translations exist (dates follow them); Japanese has none, so a
# Japanese reader gets the default (English) text with English dates, never a mix
PREVIEWED = {
    "key": "interview_when",
    "name": "Interview time",
    "category": "interview",
    "default_channels": ["in_app"],
    "content": _WHEN_CONTENT,
    "locales": {"de": _WHEN_CONTENT, "fr": _WHEN_CONTENT},
}


@pytest.mark.parametrize(
    ("locale", "title", "body"),
    [
        ("de", "Montag, 30 März 2026, 12:05", "Montag, 30. März 2026 / Montag 30 März 2026"),
        ("de-AT", "Montag, 30 März 2026, 12:05", "Montag, 30. März 2026 / Montag 30 März 2026"),
        ("fr", "lundi, 30 mars 2026, 12:05", "lundi 30 mars 2026 / lundi 30 mars 2026"),
        (
            None,
            "Monday, 30 March 2026, 12:05",
            "Monday, March 30, 2026 / Monday 30 March 2026",
        ),
        (
            "ja",
            "Monday, 30 March 2026, 12:05",
            "Monday, March 30, 2026 / Monday 30 March 2026",
        ),
    ],
)
async def test_preview_formats_dates_in_its_locale(
    service: Service, tokens: Tokens, locale: str | None, title: str, body: str
) -> None:
    # The preview has no recipient zone: it renders in UTC.
    created = await service.client.post("/v1/templates", json=PREVIEWED, headers=tokens.admin())
    assert created.status_code == 201, created.text
    payload: dict[str, Any] = {"data": {"when": MARCH}}
    if locale is not None:
        payload["locale"] = locale
    r = await service.client.post(
        "/v1/templates/interview_when/preview", json=payload, headers=tokens.service()
    )
    assert r.status_code == 200, r.text
    assert r.json()["locale"] == locale
    assert r.json()["content"]["in_app"] == {"title": title, "body": body}


async def test_preview_with_a_hostile_format_is_422(service: Service, tokens: Tokens) -> None:
    hostile = {"in_app": {"title": '{{ when|datetime("bogus") }}'}}
    template = {**PREVIEWED, "content": hostile, "locales": {"de": hostile}}
    created = await service.client.post("/v1/templates", json=template, headers=tokens.admin())
    assert created.status_code == 201, created.text
    r = await service.client.post(
        "/v1/templates/interview_when/preview",
        json={"data": {"when": MARCH}, "locale": "de"},
        headers=tokens.service(),
    )
    assert r.status_code == 422, r.text
    assert "datetime: " in r.text
    assert any(error["loc"][-1] == "data" for error in r.json()["errors"])
