from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from tidings.auth.deps import CurrentPrincipal, ServicePrincipal
from tidings.deps import Ctx, ReadSession, WriteSession
from tidings.kit.paging import DEFAULT_LIMIT, MAX_LIMIT
from tidings.kit.types import UUID_PATTERN
from tidings.ops.responses import errors
from tidings.reminder import service
from tidings.reminder.schemas import ReminderCreate, ReminderPage, ReminderRead, ReminderUpdate

router = APIRouter(prefix="/reminders", tags=["reminders"])

IdPath = Annotated[str, Path(pattern=UUID_PATTERN)]


@router.post(
    "",
    response_model=ReminderRead,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 413, 422),
)
async def create_reminder(
    payload: ReminderCreate, principal: ServicePrincipal, session: WriteSession, ctx: Ctx
) -> ReminderRead:
    """Schedule an interview: both parties are invited now and reminded at each offset."""
    return await service.create(session, ctx, principal, payload)


@router.get("", response_model=ReminderPage, responses=errors(400, 401, 422))
async def list_reminders(
    principal: CurrentPrincipal,
    session: ReadSession,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ReminderPage:
    """Interviews, newest first: all of the tenant's for a service, your own for a user."""
    return await service.list_page(session, ctx, principal, limit=limit, cursor=cursor)


@router.get("/{reminder_id}", response_model=ReminderRead, responses=errors(401, 404, 422))
async def get_reminder(
    reminder_id: IdPath, principal: CurrentPrincipal, session: ReadSession, ctx: Ctx
) -> ReminderRead:
    """One interview (participants and services)."""
    return await service.get(session, ctx, principal, reminder_id)


@router.patch(
    "/{reminder_id}", response_model=ReminderRead, responses=errors(401, 403, 404, 409, 413, 422)
)
async def update_reminder(
    reminder_id: IdPath,
    payload: ReminderUpdate,
    principal: ServicePrincipal,
    session: WriteSession,
    ctx: Ctx,
) -> ReminderRead:
    """Reschedule: pending reminders move and both parties get the updated invitation."""
    return await service.update(session, ctx, principal, reminder_id, payload)


@router.delete("/{reminder_id}", response_model=ReminderRead, responses=errors(401, 403, 404, 422))
async def cancel_reminder(
    reminder_id: IdPath, principal: ServicePrincipal, session: WriteSession, ctx: Ctx
) -> ReminderRead:
    """Cancel the interview: reminders stop and both parties get the cancellation."""
    return await service.cancel(session, ctx, principal, reminder_id)
