"""Contact data syntax: e-mail without DNS, E.164 phones, locale tags, IANA time zones."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from tidings.kit.validators import (
    EmailAddress,
    PhoneNumber,
    check_email,
    check_locale,
    check_phone,
    check_timezone,
)

# --- e-mail ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("user@example.test", "user@example.test"),
        ("a@localhost", "a@localhost"),
        ("a@b.internal", "a@b.internal"),
        ("x@sub.example.com", "x@sub.example.com"),
        ("someone@host.local", "someone@host.local"),
        ("info@shop.example", "info@shop.example"),
        ("first.last+tag@example.test", "first.last+tag@example.test"),
        ("o'brien_{x}@example.test", "o'brien_{x}@example.test"),
        ("a-b@my-host.example.test", "a-b@my-host.example.test"),
        ("User.Name@Example.TEST", "User.Name@example.test"),  # the local part keeps its case
        ("a@bücher.example", "a@bücher.example"),
        ("l" * 64 + "@example.test", "l" * 64 + "@example.test"),
        ("a@" + "d" * 63 + ".test", "a@" + "d" * 63 + ".test"),
    ],
)
def test_email_accepted(value: str, normalised: str) -> None:
    assert check_email(value) == normalised


@pytest.mark.parametrize(
    "value",
    [
        "userexample.test",  # no @
        "a@b@example.test",  # two @
        "@example.test",
        "a@",
        "a b@example.test",
        "a@exa mple.test",
        " a@example.test",
        "a@example.test ",
        ".a@example.test",  # leading dot
        "a.@example.test",
        "a..b@example.test",
        "a@-example.test",  # label starts with a hyphen
        "a@example-.test",  # label ends with a hyphen
        "a@example..test",  # empty label
        "a@.example.test",
        "a@example.test.",
        "a@exa_mple.test",
        "a@example.test/x",
        '"quoted"@example.test',
        "l" * 65 + "@example.test",  # local part over 64
        "a@" + "d" * 64 + ".test",  # label over 63
        "a@" + ".".join(["d" * 60] * 5) + ".test",  # over 254 in all
        "",
        "a@example.test\n",
        "a\n@example.test",
    ],
)
def test_email_rejected(value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - messages vary by part
        check_email(value)


@pytest.mark.parametrize("value", [b"a@example.test", 7, "a\x00@example.test"])
def test_email_field_is_a_strict_clean_string(value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(EmailAddress).validate_python(value)


def test_email_field_normalises_the_domain() -> None:
    assert TypeAdapter(EmailAddress).validate_python("A@EXAMPLE.TEST") == "A@example.test"


# --- phones ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["+14155550123", "+442071838750", "+4915112345678", "+12"])
def test_phone_accepted(value: str) -> None:
    assert check_phone(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "14155550123",  # no +
        "+04155550123",  # country code cannot start with 0
        "+1 415 555 0123",
        "+1-415-555-0123",
        "+1(415)5550123",
        "+1415555012a",
        "+1234567890123456",  # 16 digits
        "+1",
        "+",
        "",
        "\uff0b14155550123",  # full-width plus
        "+\u0661\u0664\u0661\u0665\u0665\u0665\u0665",  # Arabic-Indic digits
        "+14155550123\n",
    ],
)
def test_phone_rejected(value: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        check_phone(value)


def test_phone_field_limits_length() -> None:
    adapter = TypeAdapter(PhoneNumber)
    assert adapter.validate_python("+123456789012345") == "+123456789012345"
    with pytest.raises(ValidationError):
        adapter.validate_python("+1234567890123456")


# --- locales ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("en", "en"),
        ("de-AT", "de-AT"),
        ("pt_BR", "pt-BR"),
        ("zh-Hans-CN", "zh-Hans-CN"),
        ("es-419", "es-419"),
        ("fil", "fil"),
    ],
)
def test_locale_accepted(value: str, normalised: str) -> None:
    assert check_locale(value) == normalised


@pytest.mark.parametrize(
    "value",
    [
        "",
        "e",
        "english",
        "12",
        "en-",
        "en--US",
        "en US",
        "en-A",  # subtag of one character
        "en-abcdefghi",  # subtag over 8
        "en" + "-abcdefgh" * 4,  # 38 characters
        "en.UTF-8",
        "en\n",
    ],
)
def test_locale_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="locale"):
        check_locale(value)


# --- time zones ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Asia/Kolkata", "Etc/GMT+5"],
)
def test_timezone_accepted(value: str) -> None:
    assert check_timezone(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Mars/Olympus_Mons",
        "Berlin",
        "Europe",
        "Europe/Berlin\n",
        "+02:00",
        "../../etc/passwd",
        "/etc/localtime",
        "Europe/Berlin/",
    ],
)
def test_timezone_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="IANA time zone"):
        check_timezone(value)
