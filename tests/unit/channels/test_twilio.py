from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from tidings.channels.base import (
    OutboundMessage,
    PermanentSendError,
    Provider,
    RetryableSendError,
)
from tidings.channels.sms import sms_segments
from tidings.channels.twilio import (
    ADDRESS_REJECTED_CODES,
    TwilioConfig,
    TwilioProvider,
    parse_retry_after,
    twilio_signature,
    verify_twilio_signature,
)

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "auth-token-that-must-never-be-logged-0123"
SERVICE_SID = "MG" + "fedcba9876543210" * 2
Handler = Callable[[httpx.Request], httpx.Response]


def make_message(**overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "delivery_id": "d-1",
        "tenant": "acme",
        "channel": "sms",
        "target": "+15551234567",
        "category": "interview",
        "priority": "normal",
        "title": "Interview",
        "body": "Your interview is tomorrow",
        "sms_text": "Your interview is tomorrow at 10:00",
    }
    values.update(overrides)
    return OutboundMessage(**values)


def make_config(**overrides: Any) -> TwilioConfig:
    values: dict[str, Any] = {
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
        "base_url": "https://api.twilio.test",
    }
    values.update(overrides)
    return TwilioConfig(**values)


def twilio_created(request: httpx.Request, **overrides: Any) -> httpx.Response:
    form = dict(parse_qsl(request.content.decode()))
    body = {
        "sid": "SM" + "a" * 32,
        "status": "queued",
        "num_segments": "1",
        "to": form.get("To"),
        "from": form.get("From"),
        "body": form.get("Body"),
    }
    body.update(overrides)
    return httpx.Response(201, json=body)


async def send_with(
    handler: Handler, message: OutboundMessage | None = None, **config: Any
) -> tuple[Any, list[httpx.Request]]:
    """Send one message through a provider whose client answers with ``handler``."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
        provider = TwilioProvider(make_config(**config), client=client)
        result = await provider.send(message or make_message())
    return result, seen


# configuration


def test_config_needs_exactly_one_sender() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        make_config(from_number=None)
    with pytest.raises(ValueError, match="exactly one"):
        make_config(messaging_service_sid=SERVICE_SID)
    with pytest.raises(ValueError, match="exactly one"):
        make_config(from_number="", messaging_service_sid="")


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"account_sid": ""}, id="no-sid"),
        pytest.param({"auth_token": ""}, id="no-token"),
        pytest.param({"base_url": "api.twilio.com"}, id="relative-base-url"),
        pytest.param({"status_callback_url": "/v1/providers/twilio/status"}, id="relative-cb"),
    ],
)
def test_config_rejects(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        make_config(**overrides)


def test_config_repr_hides_the_token() -> None:
    assert TOKEN not in repr(make_config())
    assert SID in repr(make_config())


async def test_identity_and_sender_key() -> None:
    async with httpx.AsyncClient() as client:
        by_number = TwilioProvider(make_config(name="twilio-eu"), client=client)
        by_service = TwilioProvider(
            make_config(from_number=None, messaging_service_sid=SERVICE_SID), client=client
        )
        assert isinstance(by_number, Provider)
        assert (by_number.name, by_number.channel) == ("twilio-eu", "sms")
        assert by_service.name == "twilio"
        assert by_number.sender_key == "+15005550006"
        assert by_service.sender_key == SERVICE_SID


async def test_aclose_leaves_the_shared_client_open() -> None:
    async with httpx.AsyncClient() as client:
        provider = TwilioProvider(make_config(), client=client)
        await provider.aclose()
        assert not client.is_closed


# the request


async def test_posts_the_form_with_basic_auth() -> None:
    result, seen = await send_with(
        twilio_created,
        status_callback_url="https://tidings.example/v1/providers/twilio/status",
    )

    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"https://api.twilio.test/2010-04-01/Accounts/{SID}/Messages.json"
    expected_auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(request.content.decode())) == {
        "To": "+15551234567",
        "Body": "Your interview is tomorrow at 10:00",
        "From": "+15005550006",
        "StatusCallback": "https://tidings.example/v1/providers/twilio/status",
    }
    assert result.provider == "twilio"
    assert result.provider_message_id == "SM" + "a" * 32
    assert result.segments == 1
    assert result.info == {"status": "queued", "sender": "+15005550006"}


async def test_messaging_service_replaces_from_and_callback_is_optional() -> None:
    _, seen = await send_with(
        twilio_created,
        from_number=None,
        messaging_service_sid=SERVICE_SID,
        base_url="https://api.twilio.test/",
    )

    (request,) = seen
    assert request.url.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    form = dict(parse_qsl(request.content.decode()))
    assert form["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in form
    assert "StatusCallback" not in form


async def test_a_message_without_sms_text_is_not_sent() -> None:
    with pytest.raises(PermanentSendError) as caught:
        await send_with(twilio_created, make_message(sms_text=None))
    assert caught.value.code == "no_sms_text"


LONG = "Grüße " + "ж" * 100  # UCS-2, 106 units: 2 segments


@pytest.mark.parametrize(
    ("answer", "segments"),
    [
        pytest.param({"num_segments": "4"}, 4, id="twilio-says-string"),
        pytest.param({"num_segments": 5}, 5, id="twilio-says-int"),
        pytest.param({"num_segments": None}, 2, id="null-counted-locally"),
        pytest.param({"num_segments": "many"}, 2, id="garbage-counted-locally"),
        pytest.param({"num_segments": True}, 2, id="bool-counted-locally"),
    ],
)
async def test_segments(answer: dict[str, Any], segments: int) -> None:
    assert sms_segments(LONG) == 2
    result, _ = await send_with(
        lambda request: twilio_created(request, **answer), make_message(sms_text=LONG)
    )
    assert result.segments == segments


async def test_a_2xx_without_a_sid_is_still_a_success() -> None:
    # Twilio took the message: raising would make the engine send it a second time
    result, _ = await send_with(lambda request: httpx.Response(200, text="OK"))
    assert result.provider_message_id is None
    assert result.segments == 1


# errors


def twilio_error(status: int, code: int, message: str = "Twilio says no") -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


ERROR_CASES = [
    # (status, body, headers, exception, code, address_rejected, retry_after)
    pytest.param(
        429, twilio_error(429, 20429), {"Retry-After": "7"}, RetryableSendError, 20429, False, 7.0,
        id="429-retry-after-seconds",
    ),
    pytest.param(
        429, twilio_error(429, 20429), {}, RetryableSendError, 20429, False, None,
        id="429-without-retry-after",
    ),
    pytest.param(
        503, twilio_error(503, 20503), {"Retry-After": "2"}, RetryableSendError, 20503, False, 2.0,
        id="503-retry-after",
    ),
    pytest.param(
        500, twilio_error(500, 20500), {}, RetryableSendError, 20500, False, None, id="500",
    ),
    pytest.param(
        502, "<html>Bad Gateway</html>", {}, RetryableSendError, 502, False, None,
        id="502-from-a-proxy",
    ),
    pytest.param(408, "", {}, RetryableSendError, 408, False, None, id="408"),
    pytest.param(
        401, twilio_error(401, 20003, "Authenticate"), {}, RetryableSendError, 20003, False, None,
        id="401-bad-credentials",
    ),
    pytest.param(
        403, twilio_error(403, 20003), {}, RetryableSendError, 20003, False, None, id="403",
    ),
    pytest.param(
        404, twilio_error(404, 20404), {}, RetryableSendError, 20404, False, None,
        id="404-wrong-account",
    ),
    *[
        pytest.param(
            400, twilio_error(400, code), {}, PermanentSendError, code, True, None,
            id=f"{code}-address-rejected",
        )
        for code in sorted(ADDRESS_REJECTED_CODES)
    ],
    pytest.param(
        400, twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"), {},
        PermanentSendError, 21610, False, None, id="21610-opted-out",
    ),
    pytest.param(
        400, twilio_error(400, 21617), {}, PermanentSendError, 21617, False, None,
        id="21617-body-too-long",
    ),
    pytest.param(
        400, twilio_error(400, 21212), {}, PermanentSendError, 21212, False, None,
        id="21212-other-code",
    ),
    pytest.param(
        400, {"code": "21211", "message": "code as a string"}, {}, PermanentSendError, 21211,
        True, None, id="string-code",
    ),
    pytest.param(400, "not json", {}, PermanentSendError, 400, False, None, id="400-not-json"),
    pytest.param(400, [1, 2], {}, PermanentSendError, 400, False, None, id="400-json-list"),
    pytest.param(
        422, twilio_error(422, 0), {}, PermanentSendError, 0, False, None, id="422",
    ),
    pytest.param(302, "", {}, RetryableSendError, 302, False, None, id="redirect"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "body", "headers", "exception", "code", "address_rejected", "retry_after"),
    ERROR_CASES,
)
async def test_error_mapping(
    status: int,
    body: Any,
    headers: dict[str, str],
    exception: type[Exception],
    code: int,
    address_rejected: bool,
    retry_after: float | None,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    with pytest.raises(exception) as caught:
        await send_with(answer)

    error = caught.value
    assert type(error) is exception
    assert getattr(error, "code", None) == code
    if isinstance(error, PermanentSendError):
        assert error.address_rejected is address_rejected
    else:
        assert isinstance(error, RetryableSendError)
        assert error.retry_after == retry_after
    assert TOKEN not in str(error)
    assert f"HTTP {status}" in str(error)


async def test_twilio_message_text_is_kept_but_the_token_never() -> None:
    echoed = twilio_error(400, 21211, f"The 'To' number is not valid (token {TOKEN})")

    with pytest.raises(PermanentSendError) as caught:
        await send_with(lambda request: httpx.Response(400, json=echoed))

    text = str(caught.value)
    assert "The 'To' number is not valid" in text
    assert "https://www.twilio.com/docs/errors/21211" in text
    assert TOKEN not in text


async def test_retry_after_as_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)

    with pytest.raises(RetryableSendError) as caught:
        await send_with(
            lambda request: httpx.Response(
                429, json=twilio_error(429, 20429), headers={"Retry-After": later}
            )
        )

    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 30


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param(None, None, id="missing"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param(" 12 ", 12.0, id="padded"),
        pytest.param("1.5", 1.5, id="fraction"),
        pytest.param("-3", 0.0, id="negative"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="date-in-the-past"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("nan", None, id="nan"),
        pytest.param("inf", None, id="infinity"),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


@pytest.mark.parametrize(
    ("failure", "text"),
    [
        pytest.param(httpx.ConnectTimeout("connect timed out"), "ConnectTimeout", id="connect"),
        pytest.param(httpx.ReadTimeout("read timed out"), "may have been queued", id="read"),
        pytest.param(httpx.PoolTimeout("pool timed out"), "PoolTimeout", id="pool"),
    ],
)
async def test_timeouts_are_retryable(failure: httpx.TimeoutException, text: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(RetryableSendError) as caught:
        await send_with(answer)

    assert caught.value.code == "timeout"
    assert text in str(caught.value)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ConnectError("connection refused"), id="connect"),
        pytest.param(httpx.RemoteProtocolError("server disconnected"), id="protocol"),
        pytest.param(httpx.ReadError("connection reset"), id="read"),
    ],
)
async def test_transport_errors_are_retryable(failure: httpx.HTTPError) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(RetryableSendError) as caught:
        await send_with(answer)

    assert caught.value.code == "connection"
    assert TOKEN not in str(caught.value)


# signatures

# Twilio's documented example (TwilioDevEd/api-snippets,
# security/signature_validation, the same vector as twilio.com/docs/usage/security).
DOC_TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_signature_matches_twilios_documented_example() -> None:
    assert twilio_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    # the order the parameters arrive in does not matter
    shuffled = list(reversed(DOC_PARAMS.items()))
    assert twilio_signature(DOC_TOKEN, DOC_URL, shuffled) == DOC_SIGNATURE
    assert verify_twilio_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS, DOC_SIGNATURE)


def test_signature_of_repeated_names_and_non_ascii_values() -> None:
    # Built by hand from the documented algorithm: URL, then name+value pairs sorted by
    # name (case-sensitive: upper case first) and by value for a repeated name, HMAC-SHA1
    # keyed with the token over the UTF-8 string, base64.
    url = "https://tidings.example/v1/providers/twilio/inbound"
    params = [("b", "2"), ("MediaUrl", "https://m/2"), ("a", "é"), ("MediaUrl", "https://m/1")]
    payload = url + "MediaUrlhttps://m/1" + "MediaUrlhttps://m/2" + "aé" + "b2"
    expected = base64.b64encode(
        hmac.new(b"secret", payload.encode("utf-8"), hashlib.sha1).digest()
    ).decode()

    assert twilio_signature("secret", url, params) == expected


def test_signature_without_parameters_is_the_url_alone() -> None:
    url = "https://tidings.example/v1/providers/twilio/status?x=1"
    expected = base64.b64encode(hmac.new(b"t", url.encode(), hashlib.sha1).digest()).decode()
    assert twilio_signature("t", url, ()) == expected


@pytest.mark.parametrize(
    ("token", "url", "params", "signature"),
    [
        pytest.param("54321", DOC_URL, DOC_PARAMS, DOC_SIGNATURE, id="other-token"),
        pytest.param(
            DOC_TOKEN, "https://attacker.example/myapp.php?foo=1&bar=2", DOC_PARAMS,
            DOC_SIGNATURE, id="other-host",
        ),
        pytest.param(
            DOC_TOKEN, DOC_URL, {**DOC_PARAMS, "Digits": "9999"}, DOC_SIGNATURE,
            id="tampered-param",
        ),
        pytest.param(
            DOC_TOKEN, DOC_URL, {**DOC_PARAMS, "Extra": ""}, DOC_SIGNATURE, id="added-param",
        ),
        pytest.param(DOC_TOKEN, DOC_URL, DOC_PARAMS, None, id="missing-header"),
        pytest.param(DOC_TOKEN, DOC_URL, DOC_PARAMS, "", id="empty-header"),
        pytest.param(DOC_TOKEN, DOC_URL, DOC_PARAMS, "RSOYDt4T1cUTdK1PDd93", id="truncated"),
        pytest.param(DOC_TOKEN, DOC_URL, DOC_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=é", id="utf8"),
    ],
)  # fmt: skip
def test_verify_refuses(
    token: str, url: str, params: dict[str, str], signature: str | None
) -> None:
    assert not verify_twilio_signature(token, url, params, signature)
