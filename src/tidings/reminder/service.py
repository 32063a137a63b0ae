"""Interview reminders: an invitation with a calendar event for both parties, reminders
at each offset (scheduled sends, durable in the outbox), reschedule and cancel.

Each party is a recipient of every send, so each gets the messages in their own
language and time zone. The calendar event keeps one UID; every change raises its
SEQUENCE so calendars replace the event instead of adding another.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.errors import Conflict, NotFound, Unprocessable
from tidings.kit.cursor import filter_scope
from tidings.kit.ids import uuid7
from tidings.kit.paging import decode_position, next_cursor
from tidings.models import Reminder
from tidings.reminder import repository
from tidings.reminder.ics import CalendarEvent, build_ics, stable_uid
from tidings.reminder.schemas import (
    ReminderCreate,
    ReminderPage,
    ReminderRead,
    ReminderUpdate,
    ScheduledReminder,
    reminder_times,
)
from tidings.send import repository as send_repository
from tidings.send import service as sends
from tidings.send.schemas import SendCreate
from tidings.tenant.service import delivery_settings, ensure_tenant

# the sends are Tidings' own, made on the caller's behalf within its tenant
_SENDER_SUB = "tidings-reminders"


def _sender(principal: Principal) -> Principal:
    return Principal(principal.tenant, _SENDER_SUB, frozenset({"service"}))


async def create(
    session: AsyncSession, ctx: AppContext, principal: Principal, payload: ReminderCreate
) -> ReminderRead:
    """Store the interview, invite both parties and schedule the reminders."""
    now = ctx.clock.now()
    ahead, skipped = _check_times(payload.interview_time, payload.offsets_minutes, now)
    await ensure_tenant(session, ctx, principal.tenant)
    reminder_id = uuid7()
    host = urlsplit(ctx.settings.public_url).hostname or "tidings"
    reminder = await repository.add(
        session,
        {
            "id": reminder_id,
            "tenant_id": principal.tenant,
            "application_id": payload.application_id,
            "candidate_id": payload.candidate_id,
            "employer_id": payload.employer_id,
            "interview_time": payload.interview_time,
            "duration_minutes": payload.duration_minutes,
            "location": payload.location,
            "offsets_minutes": payload.offsets_minutes,
            "data": payload.data,
            "uid": stable_uid(principal.tenant, reminder_id, host),
            "sequence": 0,
            "status": "scheduled",
            "reminder_sends": [],
            "created_at": now,
            "updated_at": now,
        },
    )
    await _announce(session, ctx, principal, reminder, "interview_scheduled", "REQUEST")
    scheduled = await _schedule(session, ctx, principal, reminder, ahead)
    return _read(reminder, scheduled, skipped)


async def update(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    reminder_id: str,
    payload: ReminderUpdate,
) -> ReminderRead:
    """Move the interview: pending reminders are replaced, both parties are told, and the
    calendar event is updated (same UID, SEQUENCE + 1)."""
    reminder = await _load(session, principal, reminder_id, for_update=True)
    if reminder.status != "scheduled":
        raise Conflict("this interview was cancelled")
    now = ctx.clock.now()
    previous = reminder.interview_time
    interview_time = payload.interview_time or reminder.interview_time
    offsets = payload.offsets_minutes or reminder.offsets_minutes
    ahead, skipped = _check_times(interview_time, offsets, now)
    await _cancel_reminders(session, ctx, reminder)
    reminder.interview_time = interview_time
    reminder.offsets_minutes = offsets
    if payload.duration_minutes is not None:
        reminder.duration_minutes = payload.duration_minutes
    if "location" in payload.model_fields_set:
        reminder.location = payload.location
    reminder.sequence += 1
    reminder.updated_at = now
    extra = {"previous_interview_time": previous.isoformat()} if previous != interview_time else {}
    await _announce(session, ctx, principal, reminder, "interview_rescheduled", "REQUEST", extra)
    scheduled = await _schedule(session, ctx, principal, reminder, ahead)
    return _read(reminder, scheduled, skipped)


async def cancel(
    session: AsyncSession, ctx: AppContext, principal: Principal, reminder_id: str
) -> ReminderRead:
    """Cancel the interview: pending reminders are cancelled and both parties get the
    cancellation (METHOD:CANCEL). Repeating it changes nothing."""
    reminder = await _load(session, principal, reminder_id, for_update=True)
    if reminder.status == "cancelled":
        return _read(reminder, [], [])
    await _cancel_reminders(session, ctx, reminder)
    reminder.status = "cancelled"
    reminder.sequence += 1
    reminder.updated_at = ctx.clock.now()
    await _announce(session, ctx, principal, reminder, "interview_cancelled", "CANCEL")
    return _read(reminder, [], [])


async def get(
    session: AsyncSession, ctx: AppContext, principal: Principal, reminder_id: str
) -> ReminderRead:
    reminder = await _load(session, principal, reminder_id)
    return _read(reminder, await _scheduled(session, ctx, reminder), [])


async def list_page(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
) -> ReminderPage:
    """Service and admin see the tenant's reminders; a user those they take part in."""
    participant = None if principal.is_service else principal.sub
    scope = filter_scope("reminders", tenant=principal.tenant, participant=participant)
    after = decode_position(ctx.cursors, cursor, scope)
    rows = await repository.page(
        session, principal.tenant, participant=participant, after=after, limit=limit + 1
    )
    items, token = next_cursor(ctx.cursors, rows, limit, scope, lambda r: (r.created_at, r.id))
    return ReminderPage(items=[_read(r, [], []) for r in items], next_cursor=token)


def _check_times(
    interview_time: datetime, offsets: list[int], now: datetime
) -> tuple[list[tuple[int, datetime]], list[int]]:
    if interview_time <= now:
        raise Unprocessable("the interview is in the past", loc=["body", "interview_time"])
    ahead, skipped = reminder_times(interview_time, offsets, now)
    if not ahead:
        raise Unprocessable("every reminder time is already past", loc=["body", "offsets_minutes"])
    return ahead, skipped


async def _load(
    session: AsyncSession, principal: Principal, reminder_id: str, *, for_update: bool = False
) -> Reminder:
    participant = None if principal.is_service else principal.sub
    reminder = await repository.get(
        session, principal.tenant, reminder_id, participant=participant, for_update=for_update
    )
    if reminder is None:
        raise NotFound(f"reminder {reminder_id!r} does not exist")
    return reminder


def _template_data(reminder: Reminder, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        **reminder.data,
        "interview_time": reminder.interview_time.isoformat(),
        "duration_minutes": reminder.duration_minutes,
        **(extra or {}),
    }
    if reminder.location:
        data["location"] = reminder.location
    if reminder.application_id:
        data["application_id"] = reminder.application_id
    return data


async def _announce(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    reminder: Reminder,
    template: str,
    method: Literal["REQUEST", "CANCEL"],
    extra: dict[str, Any] | None = None,
) -> None:
    """Send ``template`` to both parties with the calendar event attached to the e-mail."""
    invite = await _calendar(session, ctx, reminder, method)
    payload = SendCreate.model_validate(
        {
            "recipients": [reminder.candidate_id, reminder.employer_id],
            "template": template,
            "data": _template_data(reminder, extra),
        }
    )
    await sends.accept(
        session,
        ctx,
        _sender(principal),
        payload,
        options=sends.SendOptions(kind="calendar", attachments=(invite,)),
    )


async def _calendar(
    session: AsyncSession,
    ctx: AppContext,
    reminder: Reminder,
    method: Literal["REQUEST", "CANCEL"],
) -> dict[str, str]:
    contacts = await repository.contacts(
        session, reminder.tenant_id, [reminder.candidate_id, reminder.employer_id]
    )
    tenant = await delivery_settings(session, reminder.tenant_id)
    organizer_name, organizer = parseaddr(tenant.email_from or ctx.settings.smtp_from)
    title = str(reminder.data.get("job_title") or "")
    summary = f"Interview: {title}" if title else "Interview"
    event = CalendarEvent(
        uid=reminder.uid,
        sequence=reminder.sequence,
        method=method,
        start=reminder.interview_time,
        duration=timedelta(minutes=reminder.duration_minutes),
        summary=summary,
        description=str(reminder.data.get("description") or summary),
        location=reminder.location,
        organizer=organizer or "no-reply@localhost",
        organizer_name=organizer_name or None,
        attendees=[
            (email, name)
            for name, email in (
                contacts.get(rid, (None, None))
                for rid in (reminder.candidate_id, reminder.employer_id)
            )
            if email
        ],
        url=str(reminder.data["interview_url"]) if reminder.data.get("interview_url") else None,
        stamp=ctx.clock.now(),
    )
    return {
        "filename": "invite.ics",
        "content_type": f"text/calendar; method={method}; charset=UTF-8",
        "content": base64.b64encode(build_ics(event)).decode(),
    }


async def _schedule(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    reminder: Reminder,
    ahead: list[tuple[int, datetime]],
) -> list[ScheduledReminder]:
    """One scheduled ``interview_reminder`` send per offset still ahead; each expires at
    the interview, so a reminder fired late never arrives after it."""
    scheduled: list[ScheduledReminder] = []
    for offset, at in ahead:
        payload = SendCreate.model_validate(
            {
                "recipients": [reminder.candidate_id, reminder.employer_id],
                "template": "interview_reminder",
                "data": _template_data(reminder),
                "send_at": at.isoformat(),
                "expires_at": reminder.interview_time.isoformat(),
            }
        )
        accepted = await sends.accept(
            session, ctx, _sender(principal), payload, options=sends.SendOptions(kind="reminder")
        )
        scheduled.append(ScheduledReminder(offset_minutes=offset, send_at=at, send_id=accepted.id))
    reminder.reminder_sends = [
        {"offset_minutes": s.offset_minutes, "send_at": s.send_at.isoformat(), "send_id": s.send_id}
        for s in scheduled
    ]
    await session.flush()
    return scheduled


async def _scheduled(
    session: AsyncSession, ctx: AppContext, reminder: Reminder
) -> list[ScheduledReminder]:
    if reminder.status != "scheduled":
        return []
    return [
        ScheduledReminder(
            offset_minutes=entry["offset_minutes"],
            send_at=datetime.fromisoformat(entry["send_at"]),
            send_id=entry["send_id"],
        )
        for entry in reminder.reminder_sends
    ]


async def _cancel_reminders(session: AsyncSession, ctx: AppContext, reminder: Reminder) -> None:
    now = ctx.clock.now()
    for entry in reminder.reminder_sends:
        await send_repository.cancel(session, reminder.tenant_id, entry["send_id"], now)
    reminder.reminder_sends = []


def _read(
    reminder: Reminder, scheduled: list[ScheduledReminder], skipped: list[int]
) -> ReminderRead:
    return ReminderRead(
        id=reminder.id,
        application_id=reminder.application_id,
        candidate_id=reminder.candidate_id,
        employer_id=reminder.employer_id,
        interview_time=reminder.interview_time,
        duration_minutes=reminder.duration_minutes,
        location=reminder.location,
        offsets_minutes=reminder.offsets_minutes,
        status="cancelled" if reminder.status == "cancelled" else "scheduled",
        uid=reminder.uid,
        sequence=reminder.sequence,
        data=reminder.data,
        reminders=scheduled,
        skipped_offsets=skipped,
        created_at=reminder.created_at,
        updated_at=reminder.updated_at,
    )
