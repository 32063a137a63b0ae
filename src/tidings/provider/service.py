"""Callbacks from providers: Twilio's delivery reports and inbound STOP/START messages."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.twilio import TwilioConfig, verify_twilio_signature
from tidings.context import AppContext
from tidings.delivery import repository as delivery_repository
from tidings.errors import Forbidden, Unprocessable
from tidings.kit.jobs import after_commit
from tidings.kit.validators import check_phone
from tidings.optout import service as optout
from tidings.webhook import service as webhooks

log = logging.getLogger(__name__)

# Twilio's message states, and what each means for our delivery row
_FINAL_FAILURE = {"failed", "undelivered"}
_STOPPED_CODE = "21610"


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
) -> bool:
    """Apply a delivery report; True when it changed a delivery."""
    form = dict(params)
    sid, state = form.get("MessageSid", ""), form.get("MessageStatus", "").lower()
    if not sid or not state:
        raise Unprocessable("MessageSid and MessageStatus are required", loc=["body"])
    delivery = await delivery_repository.by_provider_message(session, "sms", sid)
    if delivery is None:
        log.info("Twilio report for an unknown message", extra={"provider_message_id": sid})
        return False
    now = ctx.clock.now()
    code = form.get("ErrorCode") or None
    if state == "delivered" and delivery.status in ("sent", "sending"):
        delivery.status, delivery.reason = "delivered", None
    elif state in _FINAL_FAILURE and delivery.status in ("sent", "sending", "delivered"):
        delivery.status = "failed"
        delivery.reason = "opt_out" if code == _STOPPED_CODE else "undelivered"
        delivery.last_error = f"Twilio reports {state}" + (f" (error {code})" if code else "")
        if code == _STOPPED_CODE and delivery.target:
            sender = form.get("MessagingServiceSid") or form.get("From")
            if sender:
                await optout.record_sms_opt_out(session, ctx, sender, delivery.target)
    else:
        return False
    delivery.updated_at = now
    await session.flush()
    category = await delivery_repository.category_of(session, delivery.notification_id)
    due = await webhooks.emit_outcomes(
        session,
        ctx,
        [
            webhooks.OutcomeEvent(
                tenant_id=delivery.tenant_id,
                category=category or "general",
                send_id=delivery.send_id,
                notification_id=delivery.notification_id,
                recipient_id=delivery.recipient_id,
                status=delivery.status,
                data=outcome_data(delivery),
            )
        ],
    )
    if due:
        after_commit(session, lambda: ctx.dispatcher.dispatch(due))
    return True


def outcome_data(delivery: Any) -> dict[str, Any]:
    """The ``data`` of a ``delivery.*`` event."""
    return {
        "delivery_id": delivery.id,
        "send_id": delivery.send_id,
        "notification_id": delivery.notification_id,
        "recipient_id": delivery.recipient_id,
        "channel": delivery.channel,
        "status": delivery.status,
        "reason": delivery.reason,
        "attempts": delivery.attempts,
        "provider": delivery.provider,
        "provider_message_id": delivery.provider_message_id,
        "last_error": delivery.last_error,
    }


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
