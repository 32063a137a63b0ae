"""SMS end to end through a Twilio stand-in that checks what it receives: delivery
reports, STOP/START, provider fallback and rate limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Service, Tokens, make_settings, running
from tests.fixtures.twilio_service import DEFAULT_FROM, TwilioService, signed_form
from tests.integration.helpers import deliveries, send, settled
from tidings.channels.base import OutboundMessage, SendResult
from tidings.channels.registry import ProviderRegistry
from tidings.channels.twilio import TwilioConfig

PHONE = "+4915123456789"


async def _phone(svc: Service, tokens: Tokens, rid: str = "cand-1", phone: str = PHONE) -> None:
    r = await svc.client.put(
        f"/v1/recipients/{rid}", json={"phone": phone}, headers=tokens.service()
    )
    assert r.status_code in (200, 201), r.text


def _twilio(twilio_service: TwilioService, **extra: Any) -> dict[str, Any]:
    return {
        "twilio_account_sid": twilio_service.account.sid,
        "twilio_auth_token": twilio_service.account.token,
        "twilio_from": DEFAULT_FROM,
        "twilio_base_url": twilio_service.base_url,
        "delivery_max_attempts": 3,
        **extra,
    }


@pytest.fixture
async def texting(
    tmp_path: Path, database_url: str, twilio_service: TwilioService
) -> AsyncIterator[Service]:
    async with running(make_settings(tmp_path, database_url, **_twilio(twilio_service))) as svc:
        yield svc


async def _sms(svc: Service, tokens: Tokens, body: str = "Interview at 10:00") -> dict[str, Any]:
    accepted = await send(
        svc.client, tokens, recipients=["cand-1"], title="Interview", body=body, channels=["sms"]
    )
    await settled(svc.client, tokens, accepted["id"])
    (row,) = await deliveries(svc.client, tokens, send_id=accepted["id"])
    return row


async def test_sms_goes_through_twilio_with_segments_and_a_delivery_report(
    texting: Service, tokens: Tokens, twilio_service: TwilioService
) -> None:
    await _phone(texting, tokens)
    body = "Your interview with Acme is confirmed 🎉 " * 4  # 168 UCS-2 units: 3 x 67
    row = await _sms(texting, tokens, body)

    (message,) = twilio_service.messages
    assert (message.to, message.from_, message.body) == (PHONE, DEFAULT_FROM, body)
    assert message.status_callback == "http://localhost:8000/v1/providers/twilio/status"
    assert row["status"] == "sent" and row["provider"] == "twilio"
    assert row["provider_message_id"] == message.sid
    assert row["segments"] == message.num_segments == 3

    report = twilio_service.status_callback(message, "delivered")
    r = await texting.client.post(report.path, headers=report.headers, content=report.body)
    assert r.status_code == 204, r.text
    (row,) = await deliveries(texting.client, tokens, send_id=row["send_id"])
    assert row["status"] == "delivered"


async def test_a_report_with_a_bad_signature_changes_nothing(
    texting: Service, tokens: Tokens, twilio_service: TwilioService
) -> None:
    await _phone(texting, tokens)
    row = await _sms(texting, tokens)
    (message,) = twilio_service.messages
    report = twilio_service.status_callback(message, "delivered")
    forged = {**report.headers, "X-Twilio-Signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}
    for headers in (forged, {"Content-Type": report.headers["Content-Type"]}):
        r = await texting.client.post(report.path, headers=headers, content=report.body)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
    # signed for another host: the signature covers TIDINGS_PUBLIC_URL, not the Host header
    elsewhere = twilio_service.status_callback(
        message, "delivered", url="http://attacker.example/v1/providers/twilio/status"
    )
    r = await texting.client.post(
        "/v1/providers/twilio/status", headers=elsewhere.headers, content=elsewhere.body
    )
    assert r.status_code == 403
    (after,) = await deliveries(texting.client, tokens, send_id=row["send_id"])
    assert after["status"] == "sent"


async def test_stop_suppresses_later_sms_and_start_resumes(
    texting: Service, tokens: Tokens, twilio_service: TwilioService
) -> None:
    await _phone(texting, tokens)
    inbound = "http://localhost:8000/v1/providers/twilio/inbound"
    stop = twilio_service.inbound_message(
        inbound, from_number=PHONE, to_number=DEFAULT_FROM, body=" stop "
    )
    r = await texting.client.post(stop.path, headers=stop.headers, content=stop.body)
    assert r.status_code == 200 and "<Response>" in r.text

    row = await _sms(texting, tokens)
    assert (row["status"], row["reason"], row["attempts"]) == ("suppressed", "opt_out", 1)
    assert twilio_service.messages == []  # not attempted

    start = twilio_service.inbound_message(
        inbound, from_number=PHONE, to_number=DEFAULT_FROM, body="START"
    )
    r = await texting.client.post(start.path, headers=start.headers, content=start.body)
    assert r.status_code == 200
    assert (await _sms(texting, tokens))["status"] == "sent"
    assert len(twilio_service.messages) == 1


async def test_urgent_sms_still_respects_stop(
    texting: Service, tokens: Tokens, twilio_service: TwilioService
) -> None:
    await _phone(texting, tokens)
    stop = twilio_service.inbound_message(
        "http://localhost:8000/v1/providers/twilio/inbound",
        from_number=PHONE,
        to_number=DEFAULT_FROM,
        body="UNSUBSCRIBE",
    )
    await texting.client.post(stop.path, headers=stop.headers, content=stop.body)
    accepted = await send(
        texting.client,
        tokens,
        recipients=["cand-1"],
        title="Now",
        body="Urgent",
        channels=["sms"],
        priority="urgent",
    )
    await settled(texting.client, tokens, accepted["id"])
    (row,) = await deliveries(texting.client, tokens, send_id=accepted["id"])
    assert (row["status"], row["reason"]) == ("suppressed", "opt_out")


async def test_twilio_21610_records_the_opt_out(
    texting: Service, tokens: Tokens, twilio_service: TwilioService
) -> None:
    await _phone(texting, tokens)
    twilio_service.fail_next(400, code=21610, message="Attempt to send to unsubscribed recipient")
    row = await _sms(texting, tokens)
    assert (row["status"], row["reason"]) == ("failed", "opt_out")
    again = await _sms(texting, tokens)
    assert (again["status"], again["reason"]) == ("suppressed", "opt_out")
    assert twilio_service.messages == []


async def test_invalid_number_fails_at_once_and_429_is_retried(
    texting: Service, tokens: Tokens, twilio_service: TwilioService
) -> None:
    await _phone(texting, tokens)
    twilio_service.fail_next(400, code=21211, message="Invalid 'To' Phone Number")
    row = await _sms(texting, tokens)
    assert (row["status"], row["reason"], row["attempts"]) == ("failed", "invalid_address", 1)

    twilio_service.fail_next(429, retry_after=0)
    row = await _sms(texting, tokens)
    assert (row["status"], row["attempts"]) == ("sent", 2)


async def test_reports_and_inbound_messages_reject_bad_forms(
    texting: Service, tokens: Tokens, twilio_service: TwilioService
) -> None:
    inbound = "http://localhost:8000/v1/providers/twilio/inbound"
    bad = twilio_service.inbound_message(
        inbound, from_number="not-a-number", to_number=DEFAULT_FROM, body="STOP"
    )
    r = await texting.client.post(bad.path, headers=bad.headers, content=bad.body)
    assert r.status_code == 422, r.text
    r = await texting.client.post(
        "/v1/providers/twilio/status",
        json={"MessageSid": "SM1"},
        headers={"X-Twilio-Signature": bad.headers["X-Twilio-Signature"]},
    )
    assert r.status_code == 415, r.text


@pytest.fixture
def backup_twilio() -> Iterator[TwilioService]:
    """A second Twilio stand-in: another account, on another server."""
    with TwilioService() as service:
        yield service


@pytest.fixture
async def two_accounts(
    tmp_path: Path,
    database_url: str,
    twilio_service: TwilioService,
    backup_twilio: TwilioService,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Service]:
    for option, value in {
        "TYPE": "twilio",
        "ACCOUNT_SID": backup_twilio.account.sid,
        "AUTH_TOKEN": backup_twilio.account.token,
        "FROM": "+15005550007",
        "BASE_URL": backup_twilio.base_url,
    }.items():
        monkeypatch.setenv(f"TIDINGS_PROVIDER_BACKUP_{option}", value)
    settings = make_settings(tmp_path, database_url, providers="backup", **_twilio(twilio_service))
    async with running(settings) as svc:
        yield svc


async def test_fallback_to_the_next_provider_and_tenant_order(
    two_accounts: Service,
    tokens: Tokens,
    twilio_service: TwilioService,
    backup_twilio: TwilioService,
) -> None:
    svc = two_accounts
    await _phone(svc, tokens)
    # the primary is down: the backup sends, and the delivery says so
    twilio_service.fail_next(503)
    row = await _sms(svc, tokens)
    assert (row["status"], row["provider"], row["attempts"]) == ("sent", "backup", 1)
    (message,) = backup_twilio.messages
    assert row["provider_message_id"] == message.sid and message.from_ == "+15005550007"
    assert twilio_service.messages == []

    # an invalid number is invalid for every provider: no fallback
    twilio_service.fail_next(400, code=21211)
    row = await _sms(svc, tokens)
    assert (row["status"], row["reason"]) == ("failed", "invalid_address")
    assert len(backup_twilio.messages) == 1

    # the tenant puts the backup first
    r = await svc.client.put(
        "/v1/tenant/settings", json={"providers": {"sms": ["backup"]}}, headers=tokens.admin()
    )
    assert r.status_code == 200 and r.json()["providers"] == {"sms": ["backup"]}
    assert (await _sms(svc, tokens))["provider"] == "backup"
    r = await svc.client.put(
        "/v1/tenant/settings", json={"providers": {"sms": ["nope"]}}, headers=tokens.admin()
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "providers", "sms", 0]


async def test_a_stop_to_one_sender_falls_back_to_another(
    two_accounts: Service, tokens: Tokens, twilio_service: TwilioService
) -> None:
    svc = two_accounts
    await _phone(svc, tokens)
    stop = twilio_service.inbound_message(
        "http://localhost:8000/v1/providers/twilio/inbound",
        from_number=PHONE,
        to_number=DEFAULT_FROM,
        body="STOP",
    )
    await svc.client.post(stop.path, headers=stop.headers, content=stop.body)
    # opt-outs are keyed by (sender, number): the backup's number was not stopped
    row = await _sms(svc, tokens)
    assert (row["status"], row["provider"]) == ("sent", "backup")


async def test_rate_limit_smooths_a_burst(
    tmp_path: Path,
    database_url: str,
    twilio_service: TwilioService,
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIDINGS_PROVIDER_TWILIO_RATE_PER_SECOND", "20")
    monkeypatch.setenv("TIDINGS_PROVIDER_TWILIO_BURST", "1")
    settings = make_settings(tmp_path, database_url, **_twilio(twilio_service))
    async with running(settings) as svc:
        for index in range(8):
            await _phone(svc, tokens, f"cand-{index}", f"+491512345670{index}")
        accepted = await send(
            svc.client,
            tokens,
            recipients=[f"cand-{index}" for index in range(8)],
            title="Hi",
            body="Burst",
            channels=["sms"],
        )
        await settled(svc.client, tokens, accepted["id"])
        rows = await deliveries(svc.client, tokens, send_id=accepted["id"])
    assert {row["status"] for row in rows} == {"sent"}
    assert {row["attempts"] for row in rows} == {1}  # waited for a token, never refused
    arrivals = sorted(m.received_at for m in twilio_service.messages)
    # 8 messages at 20/s with a burst of 1 take at least 7 intervals of 50 ms
    assert arrivals[-1] - arrivals[0] >= 7 * 0.05 * 0.9


async def test_callbacks_are_idempotent_and_unknown_messages_harmless(
    texting: Service, tokens: Tokens, twilio_service: TwilioService
) -> None:
    await _phone(texting, tokens)
    row = await _sms(texting, tokens)
    (message,) = twilio_service.messages
    for status in ("sent", "delivered", "delivered", "undelivered"):
        report = twilio_service.status_callback(message, status)
        r = await texting.client.post(report.path, headers=report.headers, content=report.body)
        assert r.status_code == 204
    (after,) = await deliveries(texting.client, tokens, send_id=row["send_id"])
    # a failure report after delivery still wins: the carrier had the last word
    assert after["status"] == "failed" and after["reason"] == "undelivered"
    stranger = twilio_service.status_callback(replace(message, sid="SM" + "0" * 32))
    r = await texting.client.post(stranger.path, headers=stranger.headers, content=stranger.body)
    assert r.status_code == 204


class HeldTwilio:
    """A Twilio provider whose answer waits for the test: its report can come first."""

    name = "twilio"
    channel = "sms"

    def __init__(self) -> None:
        self.config = TwilioConfig(
            account_sid="AC" + "1" * 32,
            auth_token="t" * 32,
            from_number=DEFAULT_FROM,
            base_url="http://127.0.0.1:9",
        )
        self.sender_key = DEFAULT_FROM
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, message: OutboundMessage) -> SendResult:
        self.called.set()
        await self.release.wait()
        return SendResult(provider=self.name, provider_message_id="SM" + "7" * 32, segments=1)

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("state", ["delivered", "undelivered"])
async def test_a_report_that_arrives_before_the_send_is_recorded_is_kept(
    tmp_path: Path, database_url: str, tokens: Tokens, state: str
) -> None:
    held = HeldTwilio()
    registry = ProviderRegistry({"sms": [held]})
    async with running(make_settings(tmp_path, database_url), providers=registry) as svc:
        await _phone(svc, tokens)
        accepted = await send(
            svc.client, tokens, recipients=["cand-1"], title="T", body="B", channels=["sms"]
        )
        await asyncio.wait_for(held.called.wait(), 5)
        url = "http://localhost:8000/v1/providers/twilio/status"
        form = {
            "AccountSid": held.config.account_sid,
            "MessageSid": "SM" + "7" * 32,
            "MessageStatus": state,
            "From": DEFAULT_FROM,
        }
        headers, body = signed_form(held.config.auth_token, url, form)
        r = await svc.client.post("/v1/providers/twilio/status", headers=headers, content=body)
        assert r.status_code == 204, r.text
        held.release.set()
        await settled(svc.client, tokens, accepted["id"])
        (row,) = await deliveries(svc.client, tokens, send_id=accepted["id"])
    expected = ("delivered", None) if state == "delivered" else ("failed", "undelivered")
    assert (row["status"], row["reason"]) == expected


async def test_twilio_advanced_opt_out_words_are_honoured(
    texting: Service, tokens: Tokens, twilio_service: TwilioService
) -> None:
    """A tenant's own opt-out word (here German) arrives with Twilio's OptOutType."""
    await _phone(texting, tokens)
    inbound = "http://localhost:8000/v1/providers/twilio/inbound"
    stop = twilio_service.inbound_message(
        inbound,
        from_number=PHONE,
        to_number=DEFAULT_FROM,
        body="ABMELDEN",
        extra={"OptOutType": "STOP"},
    )
    r = await texting.client.post(stop.path, headers=stop.headers, content=stop.body)
    assert r.status_code == 200
    assert (await _sms(texting, tokens))["reason"] == "opt_out"
    start = twilio_service.inbound_message(
        inbound,
        from_number=PHONE,
        to_number=DEFAULT_FROM,
        body="ANMELDEN",
        extra={"OptOutType": "START"},
    )
    await texting.client.post(start.path, headers=start.headers, content=start.body)
    assert (await _sms(texting, tokens))["status"] == "sent"
