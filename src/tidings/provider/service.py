"""Callbacks from providers: Twilio's delivery reports and inbound STOP/START messages."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.twilio import TwilioConfig, verify_twilio_signature
from tidings.context import AppContext
from tidings.delivery import reports
from tidings.errors import Forbidden, Unprocessable
from tidings.kit.jobs import after_commit
from tidings.kit.validators import check_phone
from tidings.optout import service as optout

log = logging.getLogger(__name__)


def _twilio_accounts(ctx: AppContext) -> dict[str, str]:
    """Account SID -> auth token of every configured Twilio provider."""
    accounts: dict[str, str] = {}
    for provider in ctx.providers.for_channel("sms"):
        config = getattr(provider, "config", None)  # also through a rate-limiting wrapper
        if isinstance(config, TwilioConfig):
            accounts[config.account_sid] = config.auth_token
    return accounts


def verify_twilio(
    ctx: AppContext, path_and_query: str, params: Sequence[tuple[str, str]], signature: str | None
) -> None:
    """Check ``X-Twilio-Signature`` against our public URL (never the request's Host)."""
    if not signature:
        raise Forbidden("the X-Twilio-Signature header is missing")
    accounts = _twilio_accounts(ctx)
    sid = dict(params).get("AccountSid")
    tokens = [accounts[sid]] if sid in accounts else list(accounts.values())
    url = ctx.settings.public_url + path_and_query
    if not any(verify_twilio_signature(token, url, params, signature) for token in tokens):
        raise Forbidden("the X-Twilio-Signature does not match this request")


def _number(value: str | None, field: str) -> str:
    try:
        return check_phone(value or "")
    except ValueError as exc:
        raise Unprocessable(f"{field}: {exc}", loc=["body", field]) from None


async def twilio_status(
    session: AsyncSession, ctx: AppContext, params: Sequence[tuple[str, str]]
) -> None:
    """Apply a delivery report (or keep it until the delivery names the message)."""
    form = dict(params)
    sid, state = form.get("MessageSid", ""), form.get("MessageStatus", "").lower()
    if not sid or not state:
        raise Unprocessable("MessageSid and MessageStatus are required", loc=["body"])
    if len(sid) > 255 or len(state) > 16:
        raise Unprocessable("MessageSid or MessageStatus is too long", loc=["body"])
    due = await reports.receive(
        session,
        ctx,
        channel="sms",
        provider_message_id=sid,
        state=state,
        error_code=(form.get("ErrorCode") or None),
        sender=(form.get("MessagingServiceSid") or form.get("From") or None),
    )
    if due:
        after_commit(session, lambda: ctx.dispatcher.dispatch(due))


async def twilio_inbound(
    session: AsyncSession, ctx: AppContext, params: Sequence[tuple[str, str]]
) -> str | None:
    """Apply STOP-family keywords and START from an inbound SMS; returns the action."""
    form = dict(params)
    number = _number(form.get("From"), "From")
    senders = [_number(form.get("To"), "To")]
    # a number inside a messaging service: the service sends on its behalf, so the
    # opt-out covers both ways of addressing it
    if form.get("MessagingServiceSid"):
        senders.append(form["MessagingServiceSid"][:64])
    action = None
    for sender in senders:
        action = await optout.record_sms_keyword(
            session, ctx, sender=sender, number=number, body=form.get("Body", "")
        )
    return action
