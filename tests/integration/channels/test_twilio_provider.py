"""The Twilio provider against a local stand-in for Twilio's Messages API."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from tests.fixtures.twilio_service import (
    DEFAULT_FROM,
    TwilioService,
    new_messaging_service_sid,
)
from tidings.channels.base import OutboundMessage, PermanentSendError, RetryableSendError
from tidings.channels.twilio import (
    TwilioConfig,
    TwilioProvider,
    twilio_signature,
    verify_twilio_signature,
)
from tidings.kit.ids import uuid7

CALLBACK = "https://tidings.example/v1/providers/twilio/status"
ProviderFactory = Callable[..., TwilioProvider]


def make_message(target: str = "+15551234567", **overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "delivery_id": uuid7(),
        "tenant": "acme",
        "channel": "sms",
        "target": target,
        "category": "interview",
        "priority": "normal",
        "title": "Interview",
        "body": "Interview tomorrow",
        "sms_text": "Your interview with Acme is tomorrow at 10:00.",
    }
    values.update(overrides)
    return OutboundMessage(**values)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as shared:
        yield shared


@pytest.fixture
def make_provider(
    twilio_service: TwilioService, client: httpx.AsyncClient
) -> Callable[..., TwilioProvider]:
    def make(config: TwilioConfig | None = None, **options: Any) -> TwilioProvider:
        return TwilioProvider(config or twilio_service.provider_config(**options), client=client)

    return make


async def test_a_message_arrives_as_twilio_expects_it(
    twilio_service: TwilioService, make_provider: ProviderFactory
) -> None:
    provider = make_provider(status_callback_url=CALLBACK)

    result = await provider.send(make_message())

    (received,) = twilio_service.messages
    assert received.account_sid == twilio_service.account.sid
    assert received.to == "+15551234567"
    assert received.from_ == DEFAULT_FROM
    assert received.messaging_service_sid is None
    assert received.body == "Your interview with Acme is tomorrow at 10:00."
    assert received.status_callback == CALLBACK
    assert set(received.form) == {"To", "From", "Body", "StatusCallback"}
    assert result.provider == "twilio"
    assert result.provider_message_id == received.sid
    assert received.sid.startswith("SM")
    assert len(received.sid) == 34
    assert result.segments == 1
    assert result.info["status"] == "queued"


async def test_a_messaging_service_sends_instead_of_a_number(
    twilio_service: TwilioService, make_provider: ProviderFactory
) -> None:
    service_sid = new_messaging_service_sid()
    provider = make_provider(messaging_service_sid=service_sid)
    text = "Grüße 👋 " + "ж" * 130  # UCS-2, 139 units: 3 segments

    result = await provider.send(make_message(sms_text=text))

    (received,) = twilio_service.messages
    assert received.messaging_service_sid == service_sid
    assert received.from_ is None
    assert received.status_callback is None
    assert set(received.form) == {"To", "MessagingServiceSid", "Body"}
    assert received.body == text
    assert provider.sender_key == service_sid
    assert result.segments == received.num_segments == 3
    assert result.info == {"status": "accepted", "sender": service_sid}


async def test_429_retry_after_is_honoured_and_the_next_attempt_succeeds(
    twilio_service: TwilioService, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    twilio_service.fail_next(429, retry_after=5)

    with pytest.raises(RetryableSendError) as caught:
        await provider.send(make_message())

    assert caught.value.retry_after == 5.0
    assert caught.value.code == 20429
    assert twilio_service.messages == []
    result = await provider.send(make_message())
    assert result.provider_message_id == twilio_service.messages[0].sid
    assert [request.status for request in twilio_service.requests] == [429, 201]


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retryable(
    twilio_service: TwilioService, make_provider: ProviderFactory, status: int
) -> None:
    twilio_service.fail_next(status)

    with pytest.raises(RetryableSendError) as caught:
        await make_provider().send(make_message())

    assert caught.value.code == 20000 + status
    assert caught.value.retry_after is None


async def test_an_invalid_number_is_rejected_by_the_stand_ins_own_check(
    twilio_service: TwilioService, make_provider: ProviderFactory
) -> None:
    with pytest.raises(PermanentSendError) as caught:
        await make_provider().send(make_message(target="555-1234"))

    assert caught.value.code == 21211
    assert caught.value.address_rejected is True
    assert "555-1234" in str(caught.value)
    assert twilio_service.messages == []


async def test_an_unreachable_number_is_address_rejected(
    twilio_service: TwilioService, make_provider: ProviderFactory
) -> None:
    twilio_service.refused_numbers["+15550000000"] = 21614

    with pytest.raises(PermanentSendError) as caught:
        await make_provider().send(make_message(target="+15550000000"))

    assert caught.value.code == 21614
    assert caught.value.address_rejected is True


async def test_an_opted_out_recipient_gives_21610(
    twilio_service: TwilioService, make_provider: ProviderFactory
) -> None:
    twilio_service.fail_next(400, code=21610, message="Attempt to send to unsubscribed recipient")

    with pytest.raises(PermanentSendError) as caught:
        await make_provider().send(make_message())

    assert caught.value.code == 21610
    assert caught.value.address_rejected is False
    assert "unsubscribed recipient" in str(caught.value)


async def test_a_body_over_1600_characters_is_refused(
    twilio_service: TwilioService, make_provider: ProviderFactory
) -> None:
    with pytest.raises(PermanentSendError) as caught:
        await make_provider().send(make_message(sms_text="a" * 1601))

    assert caught.value.code == 21617
    assert caught.value.address_rejected is False


async def test_a_server_slower_than_the_client_timeout_is_retryable(
    twilio_service: TwilioService,
) -> None:
    twilio_service.delay_seconds = 0.5
    async with httpx.AsyncClient(timeout=0.1) as impatient:
        provider = TwilioProvider(twilio_service.provider_config(), client=impatient)

        with pytest.raises(RetryableSendError) as caught:
            await provider.send(make_message())

    assert caught.value.code == "timeout"
    # The timeout is ambiguous: Twilio (here the stand-in) still accepted the message.
    assert len(await twilio_service.wait_for_messages_async(1)) == 1


async def test_two_accounts_on_one_server(
    twilio_service: TwilioService, make_provider: ProviderFactory
) -> None:
    first = twilio_service.account
    second = twilio_service.add_account()
    us = make_provider(twilio_service.provider_config(first, name="twilio-us"))
    eu = make_provider(
        twilio_service.provider_config(
            second, name="twilio-eu", from_number="+447700900123", status_callback_url=CALLBACK
        )
    )
    # a failure scripted for the second account leaves the first alone
    twilio_service.fail_next(503, account=second.sid)

    us_result = await us.send(make_message("+15551230001"))
    with pytest.raises(RetryableSendError):
        await eu.send(make_message("+447700900999"))
    eu_result = await eu.send(make_message("+447700900999"))

    (us_message,) = twilio_service.messages_for(first.sid)
    (eu_message,) = twilio_service.messages_for(second.sid)
    assert (us_result.provider, us_result.provider_message_id) == ("twilio-us", us_message.sid)
    assert (eu_result.provider, eu_result.provider_message_id) == ("twilio-eu", eu_message.sid)
    assert (us_message.to, us_message.from_) == ("+15551230001", DEFAULT_FROM)
    assert (eu_message.to, eu_message.from_) == ("+447700900999", "+447700900123")
    assert us_message.status_callback is None
    assert eu_message.status_callback == CALLBACK


async def test_wrong_credentials_are_retryable_and_send_nothing(
    twilio_service: TwilioService, make_provider: ProviderFactory
) -> None:
    other = twilio_service.add_account()
    wrong_token = TwilioConfig(
        account_sid=twilio_service.account.sid,
        auth_token=other.token,
        from_number=DEFAULT_FROM,
        base_url=twilio_service.base_url,
    )

    with pytest.raises(RetryableSendError) as caught:
        await make_provider(wrong_token).send(make_message())

    assert caught.value.code == 20003
    assert other.token not in str(caught.value)
    # once the operator fixes the token, the retry goes through
    await make_provider().send(make_message())
    assert [request.status for request in twilio_service.requests] == [401, 201]


# the stand-in itself: it must refuse what Twilio would refuse


def basic(sid: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()}


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        pytest.param({"Body": "hi", "From": DEFAULT_FROM}, 400, 21604, id="no-to"),
        pytest.param({"To": "+1555", "From": DEFAULT_FROM}, 400, 21602, id="no-body"),
        pytest.param({"To": "+15551234567", "Body": "hi"}, 400, 21603, id="no-sender"),
        pytest.param(
            {"To": "+15551234567", "Body": "hi", "From": DEFAULT_FROM,
             "MessagingServiceSid": "MG" + "0" * 32},
            400, 21603, id="both-senders",
        ),
        pytest.param(
            {"To": "+15551234567", "Body": "hi", "From": "not a number!"}, 400, 21212,
            id="bad-from",
        ),
        pytest.param(
            {"To": "+15551234567", "Body": "hi", "From": DEFAULT_FROM, "Statuscallback": "x"},
            400, 20001, id="misspelt-parameter",
        ),
        pytest.param(
            {"To": "+15551234567", "Body": "hi", "From": DEFAULT_FROM, "StatusCallback": "/cb"},
            400, 21609, id="relative-callback",
        ),
        pytest.param({"To": "+15551234567", "Body": "hi", "From": "Acme"}, 201, None, id="alpha"),
    ],
)  # fmt: skip
async def test_the_stand_in_validates_the_form(
    twilio_service: TwilioService,
    client: httpx.AsyncClient,
    form: dict[str, str],
    status: int,
    code: int | None,
) -> None:
    account = twilio_service.account
    url = f"{twilio_service.base_url}/2010-04-01/Accounts/{account.sid}/Messages.json"

    response = await client.post(url, data=form, headers=basic(account.sid, account.token))

    assert response.status_code == status
    if code is not None:
        assert response.json()["code"] == code
        assert response.json()["more_info"].endswith(str(code))
        assert twilio_service.messages == []
    else:
        assert response.json()["num_segments"] == "1"


async def test_the_stand_in_checks_auth_and_content_type(
    twilio_service: TwilioService, client: httpx.AsyncClient
) -> None:
    account = twilio_service.account
    url = f"{twilio_service.base_url}/2010-04-01/Accounts/{account.sid}/Messages.json"
    other = twilio_service.add_account()
    form = {"To": "+15551234567", "Body": "hi", "From": DEFAULT_FROM}

    anonymous = await client.post(url, data=form)
    wrong = await client.post(url, data=form, headers=basic(account.sid, "nope"))
    as_json = await client.post(url, json=form, headers=basic(account.sid, account.token))
    crossed = await client.post(url, data=form, headers=basic(other.sid, other.token))
    elsewhere = await client.post(
        f"{twilio_service.base_url}/2010-04-01/Accounts/{account.sid}/Calls.json",
        data=form,
        headers=basic(account.sid, account.token),
    )

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, 20003)
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert (wrong.status_code, wrong.json()["code"]) == (401, 20003)
    # another account's valid credentials cannot act for this account
    assert (crossed.status_code, crossed.json()["code"]) == (401, 20003)
    assert as_json.status_code == 415
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, 20404)
    assert twilio_service.messages == []


# signed callbacks


async def test_signed_status_callback_verifies(
    twilio_service: TwilioService, make_provider: ProviderFactory
) -> None:
    await make_provider(status_callback_url=CALLBACK + "?tenant=acme").send(make_message())
    (message,) = twilio_service.messages

    callback = twilio_service.status_callback(message, "undelivered", error_code=30003)

    params = parse_qsl(callback.body.decode(), keep_blank_values=True)
    signature = callback.headers["X-Twilio-Signature"]
    token = twilio_service.account.token
    assert callback.url == CALLBACK + "?tenant=acme"
    assert callback.path == "/v1/providers/twilio/status?tenant=acme"
    assert callback.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert dict(params) == callback.params
    assert callback.params["MessageSid"] == message.sid
    assert callback.params["MessageStatus"] == "undelivered"
    assert callback.params["ErrorCode"] == "30003"
    assert verify_twilio_signature(token, callback.url, params, signature)
    # the signature covers the URL Twilio called: another host or path does not verify
    assert not verify_twilio_signature(token, "http://127.0.0.1:8000/v1/x", params, signature)
    other_token = twilio_service.add_account().token
    assert not verify_twilio_signature(other_token, callback.url, params, signature)


def test_signed_inbound_message_verifies_with_both_implementations(
    twilio_service: TwilioService,
) -> None:
    url = "https://tidings.example/v1/providers/twilio/inbound"

    inbound = twilio_service.inbound_message(
        url,
        from_number="+15551234567",
        to_number=DEFAULT_FROM,
        body="STOP",
        extra={"OptOutType": "STOP"},
    )

    params = parse_qsl(inbound.body.decode(), keep_blank_values=True)
    assert dict(params)["Body"] == "STOP"
    assert dict(params)["OptOutType"] == "STOP"
    assert dict(params)["AccountSid"] == twilio_service.account.sid
    # the stand-in signs independently of tidings.channels.twilio: they must agree
    expected = twilio_signature(twilio_service.account.token, url, params)
    assert inbound.headers["X-Twilio-Signature"] == expected
