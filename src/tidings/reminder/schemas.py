from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from tidings.kit.schema import RequestModel, ResponseModel
from tidings.kit.types import AwareDatetime, CleanStr, JSONObject, RecipientId, UTCTimestamp

MAX_OFFSET_MINUTES = 43_200  # 30 days
MAX_OFFSETS = 10
# variables the reminder templates get from the reminder itself
RESERVED = frozenset(
    {"interview_time", "duration_minutes", "location", "previous_interview_time", "application_id"}
)

Offset = Annotated[StrictInt, Field(ge=1, le=MAX_OFFSET_MINUTES)]
Offsets = Annotated[list[Offset], Field(min_length=1, max_length=MAX_OFFSETS)]
Duration = Annotated[StrictInt, Field(ge=1, le=24 * 60)]
Location = Annotated[CleanStr, Field(min_length=1, max_length=1000)]


def _unique(value: list[int] | None) -> list[int] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("offsets must be unique")
    return sorted(value, reverse=True) if value is not None else None


class ReminderCreate(RequestModel):
    """An interview: both parties get an invitation now and reminders at each offset."""

    application_id: Annotated[CleanStr, Field(min_length=1, max_length=128)] | None = None
    candidate_id: RecipientId
    employer_id: RecipientId
    interview_time: AwareDatetime
    duration_minutes: Duration = 60
    location: Location | None = None
    offsets_minutes: Offsets = Field(default_factory=lambda: [1440, 60])
    data: JSONObject = Field(
        default_factory=dict,
        description="More template variables (job_title, company_name, meeting_url...)",
    )

    _offsets = field_validator("offsets_minutes")(_unique)

    @model_validator(mode="after")
    def _parties(self) -> ReminderCreate:
        if self.candidate_id == self.employer_id:
            raise ValueError("candidate_id and employer_id must be different recipients")
        clash = RESERVED & self.data.keys()
        if clash:
            raise ValueError("data must not use the names: " + ", ".join(sorted(clash)))
        return self


class ReminderUpdate(RequestModel):
    """Move or change the interview: reminders move, both parties get an update."""

    interview_time: AwareDatetime | None = None
    duration_minutes: Duration | None = None
    location: Location | None = None
    offsets_minutes: Offsets | None = None

    _offsets = field_validator("offsets_minutes")(_unique)

    @model_validator(mode="after")
    def _something(self) -> ReminderUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        for name in ("interview_time", "duration_minutes", "offsets_minutes"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ScheduledReminder(ResponseModel):
    offset_minutes: int
    send_at: UTCTimestamp
    send_id: str


class ReminderRead(ResponseModel):
    id: str
    application_id: str | None
    candidate_id: str
    employer_id: str
    interview_time: UTCTimestamp
    duration_minutes: int
    location: str | None
    offsets_minutes: list[int]
    status: Literal["scheduled", "cancelled"]
    uid: str = Field(description="The calendar event's UID (stable across updates)")
    sequence: int = Field(description="The calendar event's SEQUENCE (revision)")
    data: dict[str, Any]
    reminders: list[ScheduledReminder] = Field(default_factory=list)
    skipped_offsets: list[int] = Field(
        default_factory=list, description="Offsets whose time had already passed"
    )
    created_at: UTCTimestamp
    updated_at: UTCTimestamp


class ReminderPage(ResponseModel):
    items: list[ReminderRead]
    next_cursor: str | None


def reminder_times(
    interview_time: datetime, offsets: list[int], now: datetime
) -> tuple[list[tuple[int, datetime]], list[int]]:
    """(offset, time) of the reminders still ahead, and the offsets already past."""
    ahead: list[tuple[int, datetime]] = []
    skipped: list[int] = []
    for offset in offsets:
        at = interview_time - timedelta(minutes=offset)
        if at > now:
            ahead.append((offset, at))
        else:
            skipped.append(offset)
    return ahead, skipped
