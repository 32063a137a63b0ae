"""The preference document: the PUT body and the GET answer (SPEC section 6, "Preferences").

PUT semantics, at every level: an omitted key keeps its value, ``null`` removes the value
so the tenant's (or the built-in) default applies again. ``quiet_hours`` and ``digest``
are replaced as a whole (a partial digest object fills ``hour`` and ``weekday`` with their
defaults, it does not merge with the stored one). Unknown category slugs are accepted.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import ConfigDict, Field, StrictBool, model_validator

from tidings.kit.schema import RequestModel, ResponseModel
from tidings.kit.types import Category, CleanStr
from tidings.kit.validators import TimeZoneName

PreferenceChannel = Literal["email", "sms", "push", "in_app"]
"""The channels a person can switch; webhooks belong to the tenant and are not governed."""

CHANNELS: Final[tuple[PreferenceChannel, ...]] = ("email", "sms", "push", "in_app")
DigestMode = Literal["off", "daily", "weekly"]
DIGEST_MODES: Final[tuple[DigestMode, ...]] = ("off", "daily", "weekly")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: Final[tuple[Weekday, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Source = Literal["recipient", "tenant", "default"]

MAX_KEYS: Final = 200
"""At most this many categories, and this many matrix rows, per document."""

DEFAULT_DIGEST_HOUR: Final = 8
DEFAULT_DIGEST_WEEKDAY: Final[Weekday] = "mon"
CLOCK_PATTERN: Final = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"

ClockTime = Annotated[
    CleanStr, Field(pattern=CLOCK_PATTERN, description="Local wall time HH:MM", examples=["22:00"])
]
Switch = StrictBool | None


class ChannelSwitches(RequestModel):
    """Per-channel switches; ``null`` removes one, an omitted channel keeps its value."""

    email: Switch = None
    sms: Switch = None
    push: Switch = None
    in_app: Switch = None


class QuietHours(RequestModel):
    """A daily window in local wall time; ``end`` before ``start`` crosses midnight."""

    start: ClockTime
    end: ClockTime
    timezone: TimeZoneName | None = Field(
        None, description="IANA zone; absent or null: the recipient's time zone, else UTC"
    )

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class DigestSettings(RequestModel):
    """Replaces the stored digest as a whole; ``weekday`` only matters for ``weekly``."""

    mode: DigestMode
    hour: int = Field(DEFAULT_DIGEST_HOUR, ge=0, le=23, description="Local hour of the digest")
    weekday: Weekday = DEFAULT_DIGEST_WEEKDAY


class PreferencesUpdate(RequestModel):
    """The PUT body. ``null`` on a whole section removes all of the recipient's values in it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "channels": {"email": True, "sms": False, "push": True, "in_app": True},
                    "categories": {"resume": False},
                    "matrix": {"interview": {"sms": True}},
                    "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
                    "digest": {"mode": "daily", "hour": 8, "weekday": "mon"},
                }
            ]
        }
    )

    channels: ChannelSwitches | None = None
    categories: Annotated[dict[Category, Switch], Field(max_length=MAX_KEYS)] | None = None
    matrix: Annotated[dict[Category, ChannelSwitches | None], Field(max_length=MAX_KEYS)] | None = (
        Field(None, description="category -> channel -> switch; a null row removes the row")
    )
    quiet_hours: QuietHours | None = None
    digest: DigestSettings | None = None


# --- the GET answer ---------------------------------------------------------------------


class ChannelValues(ResponseModel):
    email: bool
    sms: bool
    push: bool
    in_app: bool


class ChannelSources(ResponseModel):
    email: Source
    sms: Source
    push: Source
    in_app: Source


class QuietHoursRead(ResponseModel):
    start: str
    end: str
    timezone: str | None = Field(description="null: the recipient's time zone, else UTC")


class DigestRead(ResponseModel):
    mode: DigestMode
    hour: int
    weekday: Weekday


class PreferencesSource(ResponseModel):
    """Where each effective value comes from; ``quiet_hours`` and ``digest`` are atomic."""

    channels: ChannelSources
    categories: dict[str, Source]
    matrix: dict[str, dict[PreferenceChannel, Source]]
    quiet_hours: Source
    digest: Source


class PreferencesRead(ResponseModel):
    """Effective values: ``categories`` and ``matrix`` list the keys set at either level.

    A listed category or cell is a value of its own level, not the outcome for a delivery:
    the outcome follows the resolution order (recipient matrix, category, channel, then
    the tenant's three), see ``tidings.preference.rules.resolve_switch``.
    """

    channels: ChannelValues
    categories: dict[str, bool]
    matrix: dict[str, dict[PreferenceChannel, bool]]
    quiet_hours: QuietHoursRead | None
    digest: DigestRead
    source: PreferencesSource
