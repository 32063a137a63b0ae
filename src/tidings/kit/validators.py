"""Syntax checks for contact data: e-mail (no DNS), E.164 phones, locales, time zones."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, Field

from tidings.kit.types import CleanStr

_LOCAL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"^{_LOCAL_ATOM}(\.{_LOCAL_ATOM})*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")


def check_email(value: str) -> str:
    """Syntax only: reserved and special-use domains (.test, localhost...) are accepted."""
    if len(value) > 254 or value.count("@") != 1:
        raise ValueError("is not an e-mail address")
    local, domain = value.rsplit("@", 1)
    if not local or len(local) > 64 or not _LOCAL.fullmatch(local):
        raise ValueError("has an invalid local part")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("has an invalid domain") from None
    labels = ascii_domain.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("has an invalid domain")
    return f"{local}@{domain.lower()}"


def check_phone(value: str) -> str:
    if not _E164.fullmatch(value):
        raise ValueError("must be an E.164 number such as +14155550123")
    return value


def check_locale(value: str) -> str:
    if not _LOCALE.fullmatch(value) or len(value) > 35:
        raise ValueError("must be a locale tag such as en, de-AT or pt-BR")
    return value.replace("_", "-")


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(value: str) -> str:
    if value not in _zones() and value != "UTC":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata directory
            raise ValueError("must be an IANA time zone such as Europe/Berlin") from None
    return value


EmailAddress = Annotated[CleanStr, Field(max_length=254), AfterValidator(check_email)]
PhoneNumber = Annotated[CleanStr, Field(max_length=16), AfterValidator(check_phone)]
Locale = Annotated[CleanStr, Field(max_length=35), AfterValidator(check_locale)]
TimeZoneName = Annotated[CleanStr, Field(max_length=64), AfterValidator(check_timezone)]
