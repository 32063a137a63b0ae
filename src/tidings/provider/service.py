"""Callbacks from providers: Twilio's delivery reports and inbound STOP/START messages."""

from __future__ import annotations

import logging
import re
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


def _twilio_configs(ctx: AppContext) -> list[tuple[str, TwilioConfig]]:
    """(provider name, account) of every configured Twilio provider."""
    found: list[tuple[str, TwilioConfig]] = []
    for provider in ctx.providers.for_channel("sms"):
        config = getattr(provider, "config", None)  # also through a rate-limiting wrapper
        if isinstance(config, TwilioConfig):
            found.append((provider.name, config))
    return found


def verify_twilio(
    ctx: AppContext, path_and_query: str, params: Sequence[tuple[str, str]], signature: str | None
) -> list[str]:
    """Check ``X-Twilio-Signature`` against our public URL (never the request's Host);
    returns the names of the providers of the account that signed it."""
    if not signature:
        raise Forbidden("the X-Twilio-Signature header is missing")
    url = ctx.settings.public_url + path_and_query
    sid = dict(params).get("AccountSid")
    configs = _twilio_configs(ctx)
    candidates = [c for _, c in configs if c.account_sid == sid] or [c for _, c in configs]
    for config in {c.account_sid: c for c in candidates}.values():
        if verify_twilio_signature(config.auth_token, url, params, signature):
            return [name for name, c in configs if c.account_sid == config.account_sid]
    raise Forbidden("the X-Twilio-Signature does not match this request")


def _number(value: str | None, field: str) -> str:
    try:
        return check_phone(value or "")
    except ValueError as exc:
        raise Unprocessable(f"{field}: {exc}", loc=["body", field]) from None


# a sender is a number (E.164), a short code, or a messaging service
_SENDER = re.compile(r"^(\+[1-9][0-9]{6,14}|[0-9]{3,8}|MG[0-9a-fA-F]{32})$")
_LIMITS = {"MessageSid": 255, "MessageStatus": 16, "ErrorCode": 16, "From": 64}


def _sender(value: str | None, field: str) -> str:
    if not value or not _SENDER.fullmatch(value):
        raise Unprocessable(
            f"{field} must be a number in E.164 form, a short code or a messaging service",
            loc=["body", field],
        )
    return value


async def twilio_status(
    session: AsyncSession,
    ctx: AppContext,
    params: Sequence[tuple[str, str]],
    providers: Sequence[str],
) -> None:
    """Apply a delivery report of one of ``providers`` (or keep it for later)."""
    form = dict(params)
    sid, state = form.get("MessageSid", ""), form.get("MessageStatus", "").lower()
    if not sid or not state:
        raise Unprocessable("MessageSid and MessageStatus are required", loc=["body"])
    for field, limit in _LIMITS.items():
        if len(form.get(field, "")) > limit:
            raise Unprocessable(f"{field} is too long", loc=["body", field])
    sender = form.get("MessagingServiceSid") or form.get("From") or None
    due = await reports.receive(
        session,
        ctx,
        channel="sms",
        provider_message_id=sid,
        state=state,
        error_code=(form.get("ErrorCode") or None),
        sender=_sender(sender, "From") if sender else None,
        providers=providers,
    )
    if due:
        after_commit(session, lambda: ctx.dispatcher.dispatch(due))


async def twilio_inbound(
    session: AsyncSession, ctx: AppContext, params: Sequence[tuple[str, str]]
) -> str | None:
    """Apply STOP-family keywords and START from an inbound SMS; returns the action."""
    form = dict(params)
    number = _number(form.get("From"), "From")
    senders = [_sender(form.get("To"), "To")]
    # a number inside a messaging service: the service sends on its behalf, so the
    # opt-out covers both ways of addressing it
    if form.get("MessagingServiceSid"):
        senders.append(_sender(form["MessagingServiceSid"], "MessagingServiceSid"))
    action = None
    for sender in senders:
        action = await optout.record_sms_keyword(
            session,
            ctx,
            sender=sender,
            number=number,
            body=form.get("Body", ""),
            opt_out_type=form.get("OptOutType"),
        )
    return action
