"""SMS through Twilio's Programmable Messaging REST API, and Twilio's request signatures.

The provider POSTs one message per send with the application's shared
``httpx.AsyncClient`` and maps Twilio's answers onto the channel port. The signature
functions serve the endpoints that receive Twilio's status callbacks and inbound
messages (SPEC "Twilio"): they must be given the public URL Twilio called, never one
rebuilt from the request's Host header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from tidings.channels.base import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
    SendResult,
)
from tidings.channels.console import redact_number
from tidings.channels.sms import sms_segments

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
# Twilio error codes that condemn the 'To' number itself: invalid, unreachable, not a
# mobile number, a region the number can never be sent to.
ADDRESS_REJECTED_CODES = frozenset({21211, 21214, 21217, 21401, 21407, 21408, 21421, 21614})
# The recipient replied STOP (or another opt-out word) to this sender; Twilio refuses
# every message from the sender to that number until they reply START.
OPTED_OUT_CODE = 21610
# 401/403 are bad credentials and 404 on the Messages collection a wrong account SID or
# base URL: operator mistakes, not properties of the message. Once the configuration is
# fixed a retry succeeds, so failing the messages for good would lose them.
_CONFIGURATION_STATUSES = frozenset({401, 403, 404})


@dataclass(frozen=True, slots=True, kw_only=True)
class TwilioConfig:
    """One Twilio account's settings; exactly one of ``from_number`` and
    ``messaging_service_sid`` names the sender (``ValueError`` otherwise).

    ``status_callback_url`` is sent as each message's ``StatusCallback`` (the public URL
    of the status endpoint). The auth token stays out of ``repr``.
    """

    name: str = "twilio"
    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str | None = None
    messaging_service_sid: str | None = None
    base_url: str = "https://api.twilio.com"
    status_callback_url: str | None = None

    def __post_init__(self) -> None:
        if not self.account_sid or not self.auth_token:
            raise ValueError("a Twilio provider needs an account SID and an auth token")
        if bool(self.from_number) == bool(self.messaging_service_sid):
            raise ValueError(
                "a Twilio provider needs exactly one of a From number and a messaging service SID"
            )
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError(f"the Twilio base URL must be an http(s) URL, not {self.base_url!r}")
        if self.status_callback_url is not None and not self.status_callback_url.startswith(
            ("https://", "http://")
        ):
            raise ValueError("the Twilio status callback URL must be an absolute http(s) URL")


class TwilioProvider:
    """Send SMS through one Twilio account.

    Errors map onto the channel port: timeouts, transport failures, 408, 429 (with
    ``retry_after`` from ``Retry-After``) and 5xx are retryable, and so are 401, 403 and
    404 (a configuration mistake, see ``_CONFIGURATION_STATUSES``). Other 4xx answers
    are permanent; Twilio's codes for a bad 'To' number set ``address_rejected`` and
    21610 (``OPTED_OUT_CODE``) tells the caller to record an opt-out keyed by
    (``sender_key``, recipient number).

    A timeout after the request went out is ambiguous: Twilio may have queued the
    message, and its API has no idempotency key, so a retry can send it twice.
    """

    channel = "sms"

    def __init__(self, config: TwilioConfig, *, client: httpx.AsyncClient) -> None:
        sender = config.messaging_service_sid or config.from_number
        if not sender:  # TwilioConfig guarantees one; this keeps the type a plain str
            raise ValueError("a Twilio provider needs a sender")
        self.name = config.name
        self._config = config
        self._client = client
        self._sender = sender
        self._auth = httpx.BasicAuth(config.account_sid, config.auth_token)
        self._url = (
            f"{config.base_url.rstrip('/')}/{API_VERSION}/Accounts/"
            f"{quote(config.account_sid, safe='')}/Messages.json"
        )

    @property
    def config(self) -> TwilioConfig:
        """The account this provider sends with (its token verifies Twilio's callbacks)."""
        return self._config

    @property
    def sender_key(self) -> str:
        """Who the recipient sees as the sender, the key of SMS opt-outs: the messaging
        service SID when one is configured (its numbers share one opt-out list), else the
        From number."""
        return self._sender

    async def send(self, message: OutboundMessage) -> SendResult:
        """POST ``message.sms_text`` to ``message.target``; see the class docstring for errors."""
        text = message.sms_text
        if text is None:
            raise PermanentSendError("the message has no rendered SMS text", code="no_sms_text")
        form = {"To": message.target, "Body": text}
        if self._config.messaging_service_sid:
            form["MessagingServiceSid"] = self._config.messaging_service_sid
        else:
            form["From"] = self._sender
        if self._config.status_callback_url:
            form["StatusCallback"] = self._config.status_callback_url
        try:
            response = await self._client.post(
                self._url, data=form, auth=self._auth, headers={"Accept": "application/json"}
            )
        except httpx.TimeoutException as exc:
            maybe_sent = isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout)
            raise RetryableSendError(
                f"Twilio did not answer in time ({type(exc).__name__})"
                + ("; the message may have been queued" if maybe_sent else ""),
                code="timeout",
            ) from exc
        except httpx.HTTPError as exc:
            raise RetryableSendError(
                f"Twilio request failed: {type(exc).__name__}: {exc}", code="connection"
            ) from exc
        if not response.is_success:
            raise _error_for(response, self._config.auth_token)
        return self._result(response, text, message)

    async def aclose(self) -> None:
        """Nothing to release: the shared HTTP client belongs to the application."""

    def _result(self, response: httpx.Response, text: str, message: OutboundMessage) -> SendResult:
        data = _json_object(response)
        sid = data.get("sid")
        if not isinstance(sid, str) or not sid:
            # Twilio took the message (2xx); raising would make a retry send it again.
            logger.warning(
                "Twilio accepted an SMS without saying its SID (HTTP %s)",
                response.status_code,
                extra={"delivery_id": message.delivery_id},
            )
            sid = None
        segments = _count(data.get("num_segments"))
        logger.debug(
            "Twilio accepted SMS to %s as %s",
            redact_number(message.target),
            sid,
            extra={"delivery_id": message.delivery_id},
        )
        return SendResult(
            provider=self.name,
            provider_message_id=sid,
            segments=segments if segments is not None else sms_segments(text),
            info={"status": data.get("status"), "sender": self._sender},
        )


def twilio_signature(
    auth_token: str, url: str, params: Iterable[tuple[str, str]] | Mapping[str, str]
) -> str:
    """Compute the ``X-Twilio-Signature`` of a form POST to ``url``.

    Twilio's algorithm: the full URL (scheme, host, path and query exactly as Twilio
    called it), then each POST parameter's name immediately followed by its value, in
    case-sensitive order of name (and of value for a repeated name); HMAC-SHA1 of that
    string keyed with the auth token, base64-encoded. Pass ``()`` for a GET.
    """
    pairs = params.items() if isinstance(params, Mapping) else params
    payload = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_twilio_signature(
    auth_token: str,
    url: str,
    params: Iterable[tuple[str, str]] | Mapping[str, str],
    signature: str | None,
) -> bool:
    """Tell whether ``signature`` (the ``X-Twilio-Signature`` header, possibly missing)
    is Twilio's signature of this request, comparing in constant time."""
    if not signature:
        return False
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def _error_for(response: httpx.Response, auth_token: str) -> SendError:
    status = response.status_code
    twilio_code, detail = _describe(response)
    code: int = twilio_code if twilio_code is not None else status
    text = f"Twilio answered HTTP {status}"
    if twilio_code is not None:
        text += f", error {twilio_code}"
    if detail:
        text += f": {detail}"
    # Twilio does not echo credentials, but a proxy's error page might: never log them.
    text = text.replace(auth_token, "***")
    if status in (408, 429) or status >= 500:
        return RetryableSendError(
            text, code=code, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status in _CONFIGURATION_STATUSES:
        return RetryableSendError(
            f"{text} (check the Twilio account SID, auth token and base URL)", code=code
        )
    if 400 <= status < 500:
        if twilio_code in ADDRESS_REJECTED_CODES:
            return PermanentSendError(text, code=code, address_rejected=True)
        if twilio_code == OPTED_OUT_CODE:
            return PermanentSendError(
                f"{text} (the recipient opted out of messages from this sender)", code=code
            )
        return PermanentSendError(text, code=code)
    # 1xx/3xx: not Twilio's API speaking (a proxy, a redirecting base URL); fixable
    return RetryableSendError(text, code=status)


def _describe(response: httpx.Response) -> tuple[int | None, str]:
    """Twilio's error ``code`` and a one-line description from its JSON error body."""
    data = _json_object(response)
    if not data:
        snippet = " ".join(response.text.split())[:200]
        return None, snippet or response.reason_phrase
    message, more_info = data.get("message"), data.get("more_info")
    detail = str(message) if message else ""
    if more_info:
        detail += f" ({more_info})"
    return _count(data.get("code")), detail.strip()


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:  # not JSON, or not UTF-8
        return {}
    return data if isinstance(data, dict) else {}


def _count(value: object) -> int | None:
    """A non-negative integer from Twilio's JSON, where numbers often arrive as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date.

    A date in the past gives 0; a missing or unreadable header gives ``None``.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # HTTP dates are always GMT
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
