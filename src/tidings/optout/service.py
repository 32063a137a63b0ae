"""Opt-outs: one-click e-mail unsubscribe (RFC 8058) and SMS STOP/START keywords."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.context import AppContext
from tidings.errors import BadRequest
from tidings.models.opt_out import ALL_BUT_URGENT
from tidings.optout import repository, tokens
from tidings.optout.tokens import UnsubscribeClaim

# the carriers' opt-out words (Twilio's defaults); START undoes them
STOP_WORDS = frozenset(
    {"STOP", "UNSUBSCRIBE", "END", "QUIT", "STOPALL", "REVOKE", "OPTOUT", "CANCEL"}
)
START_WORDS = frozenset({"START", "UNSTOP"})


def unsubscribe_url(ctx: AppContext, tenant: str, recipient: str, category: str) -> str:
    """The link that opts ``recipient`` out of e-mail of ``category``."""
    token = tokens.issue(
        ctx.secret_key, tenant=tenant, recipient=recipient, scope=category, now=ctx.clock.now()
    )
    return f"{ctx.settings.public_url}/v1/unsubscribe/{token}"


def list_unsubscribe_headers(
    ctx: AppContext, tenant: str, recipient: str, category: str, priority: str
) -> dict[str, str]:
    """RFC 2369/8058 headers for one e-mail; urgent e-mail carries none."""
    if priority == "urgent":
        return {}
    links = [f"<{unsubscribe_url(ctx, tenant, recipient, category)}>"]
    if ctx.settings.unsubscribe_mailto:
        links.append(f"<mailto:{ctx.settings.unsubscribe_mailto}?subject=unsubscribe>")
    return {
        "List-Unsubscribe": ", ".join(links),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def check_token(ctx: AppContext, token: str) -> UnsubscribeClaim:
    """The claim of a valid token; a 400 problem for anything else."""
    try:
        return tokens.read(ctx.secret_key, token, now=ctx.clock.now())
    except tokens.InvalidToken as exc:
        raise BadRequest(str(exc)) from None


@dataclass(frozen=True)
class Unsubscribed:
    claim: UnsubscribeClaim
    everything: bool


async def unsubscribe(
    session: AsyncSession, ctx: AppContext, token: str, *, everything: bool
) -> Unsubscribed:
    """Opt the token's recipient out of its category, or of all e-mail except urgent.

    Repeating it is harmless; an erased recipient has nothing left to opt out of.
    """
    claim = check_token(ctx, token)
    if await repository.recipient_exists(session, claim.tenant, claim.recipient):
        scope = ALL_BUT_URGENT if everything else claim.scope
        await repository.add_email(session, claim.tenant, claim.recipient, scope, ctx.clock.now())
    return Unsubscribed(claim, everything)


async def email_opted_out(
    session: AsyncSession,
    tenant_id: str,
    recipient_ids: Sequence[str],
    *,
    category: str,
    priority: str,
) -> set[str]:
    return await repository.email_opted_out(
        session, tenant_id, recipient_ids, category=category, urgent=priority == "urgent"
    )


def keyword(body: str) -> Literal["stop", "start"] | None:
    """What an inbound SMS asks for: carriers match the whole message, case-insensitively."""
    word = body.strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return None


async def record_sms_keyword(
    session: AsyncSession,
    ctx: AppContext,
    *,
    sender: str,
    number: str,
    body: str,
    opt_out_type: str | None = None,
) -> Literal["stop", "start"] | None:
    """Apply STOP or START from ``number`` to ``sender``; other messages change nothing.

    ``opt_out_type`` is Twilio's own reading of the message (Advanced Opt-Out, where a
    tenant may configure other words or languages): when it says STOP or START, it wins.
    """
    told = (opt_out_type or "").strip().upper()
    action: Literal["stop", "start"] | None
    if told == "STOP":
        action = "stop"
    elif told == "START":
        action = "start"
    else:
        action = keyword(body)
    if action == "stop":
        await repository.add_sms(session, sender, number, ctx.clock.now())
    elif action == "start":
        await repository.remove_sms(session, sender, number)
    return action


async def sms_opted_out(session: AsyncSession, senders: Sequence[str], number: str) -> set[str]:
    return await repository.sms_opted_out(session, senders, number)


async def record_sms_opt_out(
    session: AsyncSession, ctx: AppContext, sender: str, number: str
) -> None:
    """A provider told us the number stopped this sender (e.g. Twilio error 21610)."""
    await repository.add_sms(session, sender, number, ctx.clock.now())
