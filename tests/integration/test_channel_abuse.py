"""The channel code under abuse: Twilio callbacks and STOP/START, Web Push
subscriptions, webhook endpoints and events, one-click unsubscribe.

Written the way an attacker, a sloppy client, a flaky provider or a second process would
behave: other tenants' ids, forged and cross-account signatures, late and duplicate
reports, moved browsers, oversized and malformed fields, secrets in logs.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import SECRET_KEY, Service, Tokens, make_settings, running
from tests.fixtures.push_service import PushService
from tests.fixtures.smtp_sink import SMTPSink
from tests.fixtures.twilio_service import DEFAULT_FROM, TwilioService, signed_form
from tests.fixtures.webhook_receiver import WebhookReceiver
from tests.integration.helpers import deliveries, eventually, send, settled
from tidings.channels.base import OutboundMessage, PushSubscription, SendResult
from tidings.channels.registry import ProviderRegistry
from tidings.channels.twilio import TwilioConfig
from tidings.channels.webpush import generate_vapid_private_key, vapid_public_key
from tidings.config import ConfigError
from tidings.kit.clock import FrozenClock
from tidings.kit.logging import ConsoleFormatter
from tidings.models import Delivery
from tidings.optout.tokens import issue

PHONE = "+4915123456789"
FORM = "application/x-www-form-urlencoded"
PUBLIC = "http://localhost:8000"
STATUS = "/v1/providers/twilio/status"
INBOUND = "/v1/providers/twilio/inbound"
HOOKS = "/v1/webhook-endpoints"
ME_PUSH = "/v1/me/push-subscriptions"


# ---------------------------------------------------------------------------- helpers


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    """A 4xx that is an RFC 9457 problem document naming the request."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["instance"] == r.headers["x-request-id"]
    return body


class ScriptedTwilio:
    """A Twilio provider answering with message SIDs of its own; ``hold`` makes the next
    sends wait for the test, so a callback can arrive while the attempt is in flight."""

    channel = "sms"

    def __init__(
        self,
        name: str = "twilio",
        *,
        sender: str = DEFAULT_FROM,
        account_sid: str | None = None,
        auth_token: str | None = None,
    ) -> None:
        self.name = name
        self.config = TwilioConfig(
            name=name,
            account_sid=account_sid or "AC" + secrets.token_hex(16),
            auth_token=auth_token or secrets.token_hex(16),
            from_number=sender,
            base_url="http://127.0.0.1:9",
        )
        self.sender_key = sender
        self.sent: list[tuple[str, OutboundMessage]] = []
        self.hold: asyncio.Event | None = None
        self.called = asyncio.Event()

    async def send(self, message: OutboundMessage) -> SendResult:
        self.called.set()
        if self.hold is not None:
            await self.hold.wait()
        sid = "SM" + secrets.token_hex(16)
        self.sent.append((sid, message))
        return SendResult(provider=self.name, provider_message_id=sid, segments=1)

    async def aclose(self) -> None:
        return None

    def signed(self, path: str, form: dict[str, str]) -> tuple[dict[str, str], bytes]:
        """A callback to ``path`` signed with this account's token, as Twilio signs it."""
        return signed_form(
            self.config.auth_token, PUBLIC + path, {"AccountSid": self.config.account_sid, **form}
        )


async def _phone(svc: Service, tokens: Tokens, rid: str = "cand-1", tenant: str = "acme") -> None:
    r = await svc.client.put(
        f"/v1/recipients/{rid}", json={"phone": PHONE}, headers=tokens.service(tenant)
    )
    assert r.status_code in (200, 201), r.text


async def _sms(svc: Service, tokens: Tokens, **extra: Any) -> dict[str, Any]:
    accepted = await send(
        svc.client,
        tokens,
        recipients=["cand-1"],
        title="T",
        body="Interview",
        channels=["sms"],
        **extra,
    )
    await settled(svc.client, tokens, accepted["id"])
    (row,) = await deliveries(svc.client, tokens, send_id=accepted["id"], channel="sms")
    return row


def _push_body(subscription: PushSubscription) -> dict[str, Any]:
    return {
        "endpoint": subscription.endpoint,
        "expirationTime": None,
        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
    }


# ------------------------------------------------------------------- one-click unsubscribe


@pytest.fixture
async def plain(tmp_path: Path, database_url: str) -> AsyncIterator[Service]:
    """The embedded default (file e-mail, console SMS), nothing delivered by the runner."""
    async with running(make_settings(tmp_path, database_url), run_deliveries=False) as svc:
        yield svc


def _token(tenant: str = "acme", recipient: str = "cand-1", scope: str = "offer") -> str:
    return issue(SECRET_KEY, tenant=tenant, recipient=recipient, scope=scope, now=datetime.now(UTC))


async def _opt_outs(
    svc: Service, tokens: Tokens, rid: str = "cand-1", tenant: str = "acme"
) -> list[Any]:
    r = await svc.client.get(f"/v1/recipients/{rid}/export", headers=tokens.service(tenant))
    assert r.status_code == 200, r.text
    return [(o["channel"], o["scope"]) for o in r.json()["opt_outs"]]


async def test_one_click_unsubscribe_accepts_multipart_form_data(
    plain: Service, tokens: Tokens
) -> None:
    r = await plain.client.put(
        "/v1/recipients/cand-1", json={"email": "ada@example.test"}, headers=tokens.service()
    )
    assert r.status_code == 201
    boundary = "b0undary" + secrets.token_hex(4)
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()
    r = await plain.client.post(
        f"/v1/unsubscribe/{_token()}",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 200, r.text
    assert await _opt_outs(plain, tokens) == [("email", "offer")]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC))


async def test_unsubscribe_stops_an_email_that_is_already_scheduled(
    tmp_path: Path, database_url: str, tokens: Tokens, smtp_sink: SMTPSink, clock: FrozenClock
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_starttls=False,
    )
    async with running(settings, clock=clock) as svc:
        r = await svc.client.put(
            "/v1/recipients/cand-1", json={"email": "ada@example.test"}, headers=tokens.service()
        )
        assert r.status_code == 201
        accepted = await send(
            svc.client,
            tokens,
            recipients=["cand-1"],
            title="Offer",
            body="b",
            category="offer",
            channels=["email"],
            send_at=(clock.now() + timedelta(hours=1)).isoformat(),
        )
        token = issue(SECRET_KEY, tenant="acme", recipient="cand-1", scope="offer", now=clock.now())
        r = await svc.client.post(
            f"/v1/unsubscribe/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": FORM},
        )
        assert r.status_code == 200, r.text
        clock.advance(timedelta(hours=2))
        await settled(svc.client, tokens, accepted["id"])
        (row,) = await deliveries(svc.client, tokens, send_id=accepted["id"])
    assert smtp_sink.messages == []
    assert (row["status"], row["reason"]) == ("suppressed", "opt_out")


# ---------------------------------------------------------------------- Twilio callbacks


async def test_stop_to_a_short_code_sender_is_recorded(
    tmp_path: Path, database_url: str, tokens: Tokens
) -> None:
    short = ScriptedTwilio(sender="72345")
    registry = ProviderRegistry({"sms": [short]})
    async with running(make_settings(tmp_path, database_url), providers=registry) as svc:
        await _phone(svc, tokens)
        headers, body = short.signed(
            INBOUND, {"From": PHONE, "To": "72345", "Body": "STOP", "MessageSid": "SM" + "1" * 32}
        )
        r = await svc.client.post(INBOUND, headers=headers, content=body)
        assert r.status_code == 200, r.text
        row = await _sms(svc, tokens)
    assert (row["status"], row["reason"]) == ("suppressed", "opt_out")
    assert short.sent == []


async def test_a_late_report_of_the_old_message_does_not_hijack_a_retried_sms(
    tmp_path: Path, database_url: str, tokens: Tokens
) -> None:
    twilio = ScriptedTwilio()
    registry = ProviderRegistry({"sms": [twilio]})
    async with running(make_settings(tmp_path, database_url), providers=registry) as svc:
        await _phone(svc, tokens)
        row = await _sms(svc, tokens)
        ((old_sid, _),) = twilio.sent
        assert row["provider_message_id"] == old_sid
        report = {"MessageSid": old_sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
        headers, body = twilio.signed(STATUS, report)
        assert (await svc.client.post(STATUS, headers=headers, content=body)).status_code == 204
        (row,) = await deliveries(svc.client, tokens, send_id=row["send_id"])
        assert row["status"] == "failed"

        # the operator retries; while the new message is with Twilio, Twilio re-posts the
        # old message's report (it retries callbacks that did not get an answer in time)
        twilio.hold, twilio.called = asyncio.Event(), asyncio.Event()
        r = await svc.client.post(f"/v1/deliveries/{row['id']}/retry", headers=tokens.admin())
        assert r.status_code == 200, r.text
        await asyncio.wait_for(twilio.called.wait(), 5)
        r = await svc.client.post(STATUS, headers=headers, content=body)
        assert r.status_code == 204
        twilio.hold.set()
        await settled(svc.client, tokens, row["send_id"])
        (after,) = await deliveries(svc.client, tokens, send_id=row["send_id"])
    new_sid = twilio.sent[-1][0]
    assert (after["status"], after["provider_message_id"]) == ("sent", new_sid)


@pytest.fixture
async def two_accounts(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[Service, ScriptedTwilio, ScriptedTwilio]]:
    primary = ScriptedTwilio("twilio", sender=DEFAULT_FROM)
    backup = ScriptedTwilio("backup", sender="+15005550007")
    registry = ProviderRegistry({"sms": [primary, backup]})
    async with running(make_settings(tmp_path, database_url), providers=registry) as svc:
        yield svc, primary, backup


async def test_a_report_signed_by_another_account_changes_nothing(
    two_accounts: tuple[Service, ScriptedTwilio, ScriptedTwilio], tokens: Tokens
) -> None:
    svc, primary, backup = two_accounts
    await _phone(svc, tokens)
    row = await _sms(svc, tokens)
    ((sid, _),) = primary.sent
    # whoever holds the backup account's token names the primary account's message
    headers, body = backup.signed(
        STATUS,
        {
            "MessageSid": sid,
            "MessageStatus": "undelivered",
            "ErrorCode": "21610",
            "From": DEFAULT_FROM,
        },
    )
    r = await svc.client.post(STATUS, headers=headers, content=body)
    assert r.status_code in (204, 403), r.text
    (after,) = await deliveries(svc.client, tokens, send_id=row["send_id"])
    assert (after["status"], after["reason"]) == ("sent", None)
    assert await _opt_outs(svc, tokens) == []


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"ErrorCode": "3" * 40}, id="long-error-code"),
        pytest.param({"ErrorCode": "21610", "From": "+1" + "5" * 80}, id="long-sender"),
        pytest.param({"ErrorCode": "21610", "MessagingServiceSid": "MG" + "a" * 80}, id="long-mg"),
    ],
)
async def test_a_signed_report_with_overlong_fields_is_not_a_server_error(
    tmp_path: Path,
    database_url: str,
    tokens: Tokens,
    backend: str,
    form: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    twilio = ScriptedTwilio()
    registry = ProviderRegistry({"sms": [twilio]})
    async with running(make_settings(tmp_path, database_url), providers=registry) as svc:
        await _phone(svc, tokens)
        row = await _sms(svc, tokens)
        ((sid, _),) = twilio.sent
        # one report for the message we sent, one for a message we do not know (yet)
        for message in (sid, "SM" + secrets.token_hex(16)):
            headers, body = twilio.signed(
                STATUS, {"MessageSid": message, "MessageStatus": "undelivered", **form}
            )
            r = await svc.client.post(STATUS, headers=headers, content=body)
            assert r.status_code < 500, r.text
            if r.status_code >= 400:
                assert_problem(r, r.status_code)
        (after,) = await deliveries(svc.client, tokens, send_id=row["send_id"])
        assert after["status"] in ("sent", "failed")


# -------------------------------------------------------------------------- Web Push


@pytest.fixture
async def pushing(tmp_path: Path, database_url: str, clock: FrozenClock) -> AsyncIterator[Service]:
    settings = make_settings(tmp_path, database_url, allow_private_targets=True)
    async with running(settings, clock=clock) as svc:
        yield svc


async def test_a_pending_push_does_not_follow_its_browser_to_another_user(
    pushing: Service, tokens: Tokens, push_service: PushService, clock: FrozenClock
) -> None:
    browser = push_service.subscribe()
    r = await pushing.client.post(ME_PUSH, json=_push_body(browser), headers=tokens.user("cand-1"))
    assert r.status_code == 201, r.text
    accepted = await send(
        pushing.client,
        tokens,
        recipients=["cand-1"],
        title="Offer for Ada",
        body="Salary 95k",
        channels=["push"],
        send_at=(clock.now() + timedelta(hours=1)).isoformat(),
    )
    # cand-2 signs in on the same browser profile, which registers the endpoint again:
    # for cand-2 it is a new subscription
    r = await pushing.client.post(ME_PUSH, json=_push_body(browser), headers=tokens.user("cand-2"))
    assert r.status_code == 201, r.text
    assert (await pushing.client.get(ME_PUSH, headers=tokens.user("cand-1"))).json()["items"] == []
    clock.advance(timedelta(hours=2))
    await settled(pushing.client, tokens, accepted["id"])
    (row,) = await deliveries(pushing.client, tokens, send_id=accepted["id"])
    assert [p.payload["title"] for p in push_service.received] == []
    assert row["status"] != "sent"


async def test_a_multibyte_push_endpoint_is_not_a_server_error(
    pushing: Service, tokens: Tokens, backend: str, request: pytest.FixtureRequest
) -> None:
    rng = secrets.SystemRandom()
    path = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(2000))
    body = {
        "endpoint": f"https://push.example.test/{path}",
        "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22},
    }
    r = await pushing.client.post(ME_PUSH, json=body, headers=tokens.user("cand-1"))
    assert r.status_code in (201, 422), r.text


async def test_push_subscriptions_resist_other_users_tenants_and_bad_input(
    pushing: Service, tokens: Tokens, push_service: PushService
) -> None:
    client = pushing.client
    browser = push_service.subscribe()
    ada, bob = tokens.user("cand-1"), tokens.user("cand-2")
    assert (await client.post(ME_PUSH, json=_push_body(browser), headers=ada)).status_code == 201
    # the same browser in another tenant is another subscription; acme's stays with ada
    other = tokens.user("cand-1", tenant="globex")
    assert (await client.post(ME_PUSH, json=_push_body(browser), headers=other)).status_code == 201
    r = await client.delete(ME_PUSH, params={"endpoint": browser.endpoint}, headers=other)
    assert r.status_code == 204
    # bob can neither remove nor see ada's browser
    r = await client.request("DELETE", ME_PUSH, json={"endpoint": browser.endpoint}, headers=bob)
    assert_problem(r, 404)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("DELETE", {}),
        ("DELETE", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("DELETE", {"json": ["endpoint"]}),
        ("DELETE", {"json": {"endpoint": 5}}),
        ("DELETE", {"json": {"endpoint": browser.endpoint, "extra": 1}}),
        ("DELETE", {"json": {"endpoint": ""}}),
        ("DELETE", {"params": {"endpoint": browser.endpoint + "\x00"}}),
        ("DELETE", {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}),
        ("POST", {"json": [_push_body(browser)]}),
        ("POST", {"json": {**_push_body(browser), "expirationTime": "soon"}}),
        (
            "POST",
            {"json": {**_push_body(browser), "endpoint": "https://p.example.test/" + "a" * 2048}},
        ),
        ("POST", {"json": {**_push_body(browser), "keys": {"p256dh": "!" * 87, "auth": "A" * 22}}}),
        ("POST", {"json": {**_push_body(browser), "keys": {"p256dh": "A" * 87, "auth": "A" * 22}}}),
        (
            "POST",
            {"json": {**_push_body(browser), "endpoint": "https://[::ffff:169.254.169.254]/x"}},
        ),
        ("POST", {"json": {**_push_body(browser), "endpoint": "https://2852039166/x"}}),
    ]
    for method, kwargs in cases:
        headers = {**ada, **kwargs.pop("headers", {})}
        assert_problem(await client.request(method, ME_PUSH, headers=headers, **kwargs), 422)
    r = await client.post(ME_PUSH, content=b"x" * (1024 * 1024 + 1), headers=ada)
    assert_problem(r, 413)
    page = (await client.get(ME_PUSH, headers=ada)).json()["items"]
    assert [s["endpoint"] for s in page] == [browser.endpoint]
    assert (await client.get(ME_PUSH, headers=bob)).json()["items"] == []


async def test_export_and_erasure_cover_push_subscriptions_and_opt_outs(
    pushing: Service, tokens: Tokens, push_service: PushService
) -> None:
    client = pushing.client
    browser = push_service.subscribe()
    r = await client.put(
        "/v1/recipients/cand-1", json={"email": "ada@example.test"}, headers=tokens.service()
    )
    assert r.status_code == 201
    r = await client.post(ME_PUSH, json=_push_body(browser), headers=tokens.user("cand-1"))
    assert r.status_code == 201
    token = _token()
    r = await client.post(f"/v1/unsubscribe/{token}", content=b"", headers={"Content-Type": FORM})
    assert r.status_code == 200
    export = (await client.get("/v1/recipients/cand-1/export", headers=tokens.service())).json()
    assert [s["endpoint"] for s in export["push_subscriptions"]] == [browser.endpoint]
    # the browser's encryption secrets are not handed to the host platform
    assert browser.auth not in str(export) and browser.p256dh not in str(export)
    assert [(o["channel"], o["scope"]) for o in export["opt_outs"]] == [("email", "offer")]
    # another tenant's export never shows them
    r = await client.get("/v1/recipients/cand-1/export", headers=tokens.service("globex"))
    assert_problem(r, 404)

    assert (
        await client.delete("/v1/recipients/cand-1", headers=tokens.service())
    ).status_code == 204
    assert (await client.get(ME_PUSH, headers=tokens.user("cand-1"))).json()["items"] == []
    # the old link is harmless now and does not bring the recipient back
    r = await client.post(f"/v1/unsubscribe/{token}", content=b"", headers={"Content-Type": FORM})
    assert r.status_code == 200
    assert_problem(await client.get("/v1/recipients/cand-1", headers=tokens.service()), 404)
    r = await client.put("/v1/recipients/cand-1", json={}, headers=tokens.service())
    assert r.status_code == 201
    assert await _opt_outs(pushing, tokens) == []


# --------------------------------------------------------------- unsubscribe, continued


async def test_unsubscribe_tokens_act_only_on_their_tenant_and_recipient(
    plain: Service, tokens: Tokens
) -> None:
    client = plain.client
    for tenant in ("acme", "globex"):
        for rid in ("cand-1", "cand-2"):
            r = await client.put(
                f"/v1/recipients/{rid}",
                json={"email": f"{rid}@{tenant}.test"},
                headers=tokens.service(tenant),
            )
            assert r.status_code == 201
    token = _token("acme", "cand-1", "offer")
    # the confirmation page changes nothing, however often it is fetched
    for _ in range(2):
        page = await client.get(f"/v1/unsubscribe/{token}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert await _opt_outs(plain, tokens) == []
    r = await client.post(
        f"/v1/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click&scope=all",
        headers={"Content-Type": FORM},
    )
    assert r.status_code == 200, r.text
    assert await _opt_outs(plain, tokens) == [("email", "*")]
    assert await _opt_outs(plain, tokens, "cand-2") == []
    assert await _opt_outs(plain, tokens, "cand-1", "globex") == []


async def test_unsubscribe_refuses_bad_input_with_problems_and_changes_nothing(
    plain: Service, tokens: Tokens
) -> None:
    client = plain.client
    r = await client.put(
        "/v1/recipients/cand-1", json={"email": "ada@example.test"}, headers=tokens.service()
    )
    assert r.status_code == 201
    token = _token()
    payload, mac = token.split(".")
    for bad in (
        "x",
        f"{payload}.",
        f".{mac}",
        f"{payload}.{mac}x",
        f"{payload}x.{mac}",
        f"{payload}.{mac}.{mac}",
        "%C3%A9" + token,
        "%00" + token,
        "A" * 4000 + "." + mac,
    ):
        for method in ("GET", "POST"):
            r = await client.request(
                method,
                f"/v1/unsubscribe/{bad}",
                content=b"scope=all",
                headers={"Content-Type": FORM},
            )
            assert_problem(r, 400)
    path = f"/v1/unsubscribe/{token}"
    for body, content_type, status in (
        (b"scope=all", "text/plain", 415),
        (b'{"scope": "all"}', "application/json", 415),
        (b"scope=all", "application/x-www-form-urlencodedX", 415),
        (b"scope=everything", FORM, 422),
        (b"scope=", FORM, 422),
        (b"scope=all&scope=bogus", FORM, 422),
        (b"scope=%ff", FORM, 422),
        (b"\xff\xfe", FORM, 422),
        (b"scope=%00", FORM, 422),
        (b"&".join(b"f%d=1" % i for i in range(500)), FORM, 422),
        (b"scope=all&" + b"x" * (1024 * 1024), FORM, 413),
    ):
        r = await client.post(path, content=body, headers={"Content-Type": content_type})
        assert_problem(r, status)
    assert await _opt_outs(plain, tokens) == []


# loggers that configure_logging() turns down to WARNING in every deployment (and the test
# client's own httpx lines are not the service's log either)
_SILENCED = ("aiosqlite", "httpx", "httpcore")


def _our_log(caplog: pytest.LogCaptureFixture) -> str:
    """Every line the service would write, through its own formatter (which redacts)."""
    formatter = ConsoleFormatter()
    return "\n".join(
        formatter.format(r) for r in caplog.records if not r.name.startswith(_SILENCED)
    )


async def test_access_log_never_shows_unsubscribe_tokens(
    plain: Service, caplog: pytest.LogCaptureFixture
) -> None:
    token = _token()
    caplog.set_level(logging.DEBUG)
    await plain.client.get(f"/v1/unsubscribe/{token}")
    await plain.client.post(f"/v1/unsubscribe/{token}?again=1", content=b"")
    ours = _our_log(caplog)
    assert "/v1/unsubscribe/" in ours
    assert token not in ours and token.split(".")[1] not in ours


async def test_access_log_never_shows_push_endpoints(
    pushing: Service, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    capability = secrets.token_urlsafe(24)
    endpoint = f"https://fcm.googleapis.com/fcm/send/{capability}"
    caplog.set_level(logging.DEBUG)
    r = await pushing.client.delete(
        ME_PUSH, params={"endpoint": endpoint}, headers=tokens.user("cand-1")
    )
    assert r.status_code == 404
    ours = _our_log(caplog)
    assert "push-subscriptions" in ours
    assert capability not in ours


# ------------------------------------------------------------------- Twilio, continued


@pytest.fixture
async def texting(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[Service, ScriptedTwilio]]:
    twilio = ScriptedTwilio()
    registry = ProviderRegistry({"sms": [twilio]})
    async with running(make_settings(tmp_path, database_url), providers=registry) as svc:
        yield svc, twilio


async def test_twilio_callbacks_refuse_bad_input_with_problems(
    texting: tuple[Service, ScriptedTwilio], tokens: Tokens
) -> None:
    svc, twilio = texting
    client = svc.client
    await _phone(svc, tokens)
    for path in (STATUS, INBOUND):
        good_headers, good_body = twilio.signed(
            path,
            {
                "MessageSid": "SM" + "1" * 32,
                "MessageStatus": "delivered",
                "From": PHONE,
                "To": DEFAULT_FROM,
                "Body": "STOP",
            },
        )
        signature = good_headers["X-Twilio-Signature"]
        form = {"Content-Type": FORM, "X-Twilio-Signature": signature}
        cases: list[tuple[bytes, dict[str, str], int]] = [
            (good_body, {"X-Twilio-Signature": signature}, 415),
            (good_body, {"Content-Type": "application/json", "X-Twilio-Signature": signature}, 415),
            (good_body, {"Content-Type": "multipart/form-data; boundary=x"}, 415),
            (good_body, {"Content-Type": FORM}, 403),
            (good_body, {"Content-Type": FORM, "X-Twilio-Signature": "x" * 28}, 403),
            (good_body, {"Content-Type": FORM, "X-Twilio-Signature": "é".encode()}, 403),  # type: ignore[dict-item]
            (good_body + b"&Extra=1", form, 403),
            (good_body.replace(b"STOP", b"START"), form, 403),
            (b"\xff\xfe", form, 422),
            (b"Body=%ff", form, 422),
            (b"From=%00", form, 422),
            (b"&".join(b"f%d=1" % i for i in range(300)), form, 422),
            (b"x" * (1024 * 1024 + 1), form, 413),
        ]
        for body, headers, status in cases:
            r = await client.post(path, content=body, headers=headers)
            assert_problem(r, status)
        assert_problem(await client.get(path), 405)
        # signed correctly, but for the request's own Host instead of TIDINGS_PUBLIC_URL
        headers, body = signed_form(
            twilio.config.auth_token,
            f"http://tidings.test{path}",
            {
                "AccountSid": twilio.config.account_sid,
                "MessageSid": "SM1",
                "MessageStatus": "delivered",
            },
        )
        assert_problem(await client.post(path, content=body, headers=headers), 403)
    # signed, but missing what the endpoint needs
    for path, fields in (
        (STATUS, {"MessageSid": "SM1"}),
        (STATUS, {"MessageStatus": "delivered"}),
        (INBOUND, {"To": DEFAULT_FROM, "Body": "STOP"}),
        (INBOUND, {"From": "not-a-number", "To": DEFAULT_FROM, "Body": "STOP"}),
    ):
        headers, body = twilio.signed(path, fields)
        assert_problem(await client.post(path, content=body, headers=headers), 422)
    assert await _opt_outs(svc, tokens) == []


@pytest.mark.parametrize("state", ["dead", "cancelled", "suppressed", "failed", "pending"])
async def test_reports_for_a_delivery_that_is_not_out_change_nothing(
    texting: tuple[Service, ScriptedTwilio], tokens: Tokens, state: str
) -> None:
    svc, twilio = texting
    await _phone(svc, tokens)
    row = await _sms(svc, tokens)
    async with svc.ctx.db.transaction() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.id == row["id"])
            # far in the future, so that the sweeper never picks a "pending" row up again
            .values(status=state, reason="test", not_before=datetime(2999, 1, 1, tzinfo=UTC))
        )
    for status in ("delivered", "undelivered", "failed", "sent", "queued"):
        headers, body = twilio.signed(
            STATUS,
            {
                "MessageSid": row["provider_message_id"],
                "MessageStatus": status,
                "ErrorCode": "21610",
                "From": DEFAULT_FROM,
            },
        )
        assert (await svc.client.post(STATUS, headers=headers, content=body)).status_code == 204
    (after,) = await deliveries(svc.client, tokens, send_id=row["send_id"])
    assert (after["status"], after["reason"]) == (state, "test")
    assert await _opt_outs(svc, tokens) == []


async def test_reports_twice_and_out_of_order_emit_one_event_per_change(
    tmp_path: Path,
    database_url: str,
    tokens: Tokens,
    webhook_receiver: WebhookReceiver,
    twilio_service: TwilioService,
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        allow_private_targets=True,
        twilio_account_sid=twilio_service.account.sid,
        twilio_auth_token=twilio_service.account.token,
        twilio_from=DEFAULT_FROM,
        twilio_base_url=twilio_service.base_url,
    )
    async with running(settings) as svc:
        r = await svc.client.post(
            HOOKS, json={"url": webhook_receiver.url()}, headers=tokens.admin()
        )
        webhook_receiver.secrets = (r.json()["secret"],)
        await _phone(svc, tokens)
        row = await _sms(svc, tokens)
        (message,) = twilio_service.messages
        for status in ("delivered", "sent", "delivered", "queued", "delivered"):
            report = twilio_service.status_callback(message, status)
            r = await svc.client.post(report.path, headers=report.headers, content=report.body)
            assert r.status_code == 204, r.text
        (after,) = await deliveries(svc.client, tokens, send_id=row["send_id"], channel="sms")
        await webhook_receiver.wait_for_requests_async(2)
        await settled(svc.client, tokens, row["send_id"])
        hooks = await deliveries(svc.client, tokens, send_id=row["send_id"], channel="webhook")
    assert after["status"] == "delivered"
    assert [h["status"] for h in hooks] == ["sent", "sent"]
    received = webhook_receiver.requests
    assert sorted(r.json()["type"] for r in received) == ["delivery.delivered", "delivery.sent"]
    assert all(r.signature_valid for r in received)


async def test_stop_is_keyed_by_sender_and_number_and_start_undoes_it(
    two_accounts: tuple[Service, ScriptedTwilio, ScriptedTwilio], tokens: Tokens
) -> None:
    svc, primary, backup = two_accounts
    await _phone(svc, tokens)
    r = await svc.client.put(
        "/v1/tenant/settings", json={"providers": {"sms": ["twilio"]}}, headers=tokens.admin()
    )
    assert r.status_code == 200
    # a STOP from another phone, and a STOP to the other sender, change nothing for us
    for account, fields in (
        (primary, {"From": "+4915100000000", "To": DEFAULT_FROM, "Body": "STOP"}),
        (backup, {"From": PHONE, "To": "+15005550007", "Body": "stop"}),
        (primary, {"From": PHONE, "To": DEFAULT_FROM, "Body": "please stop"}),
    ):
        headers, body = account.signed(INBOUND, fields)
        assert (await svc.client.post(INBOUND, headers=headers, content=body)).status_code == 200
    assert (await _sms(svc, tokens))["status"] == "sent"
    for word in ("QUIT", "Revoke", " optout\n"):
        headers, body = primary.signed(INBOUND, {"From": PHONE, "To": DEFAULT_FROM, "Body": word})
        r = await svc.client.post(INBOUND, headers=headers, content=body)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
        # urgent never bypasses it
        row = await _sms(svc, tokens, priority="urgent")
        assert (row["status"], row["reason"]) == ("suppressed", "opt_out")
        headers, body = primary.signed(
            INBOUND, {"From": PHONE, "To": DEFAULT_FROM, "Body": "start"}
        )
        assert (await svc.client.post(INBOUND, headers=headers, content=body)).status_code == 200
        assert (await _sms(svc, tokens))["status"] == "sent"


# ------------------------------------------------------------------------- webhooks


@pytest.fixture
async def hooked(tmp_path: Path, database_url: str, clock: FrozenClock) -> AsyncIterator[Service]:
    settings = make_settings(tmp_path, database_url, allow_private_targets=True)
    async with running(settings, clock=clock) as svc:
        yield svc


async def _hook(
    svc: Service, tokens: Tokens, receiver: WebhookReceiver, tenant: str = "acme", **extra: Any
) -> dict[str, Any]:
    r = await svc.client.post(
        HOOKS, json={"url": receiver.url(), **extra}, headers=tokens.admin(tenant)
    )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    receiver.secrets = (*receiver.secrets, created["secret"])
    return created


async def test_webhook_endpoints_refuse_bad_input_and_other_tenants(
    hooked: Service, tokens: Tokens, webhook_receiver: WebhookReceiver
) -> None:
    client, admin = hooked.client, tokens.admin()
    created = await _hook(hooked, tokens, webhook_receiver)
    eid = created["id"]
    secret = "has spaces but is long enough " * 2
    for body in (
        {"url": webhook_receiver.url(), "secret": secret},
        {"url": webhook_receiver.url(), "secret": "x" * 257},
        {"url": webhook_receiver.url(), "secret": "\u00e9" * 30},
        {"url": webhook_receiver.url() + "\x00"},
        {"url": ""},
        {"url": "https://"},
        {"url": "javascript:alert(1)"},
        {"url": "https://[::ffff:169.254.169.254]/x"},
        {"url": "https://0xa9fea9fe/x"},
        {"url": "https://224.0.0.1/x"},
        {"url": "https://[::]/x"},
        {"url": webhook_receiver.url(), "categories": ["a"] * 101},
        {"url": webhook_receiver.url(), "categories": "offer"},
        {"url": webhook_receiver.url(), "extra": True},
        {"url": 5},
        [webhook_receiver.url()],
    ):
        r = await client.post(HOOKS, json=body, headers=admin)
        problem = assert_problem(r, 422)
        assert secret not in r.text  # a refused secret is not echoed back
        del problem
    r = await client.post(
        HOOKS, content=b'{"url": ', headers={**admin, "Content-Type": "application/json"}
    )
    assert_problem(r, 422)
    for bad_id in ("not-a-uuid", "..%2f..%2fhealthz", "0" * 36):
        for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/rotate-secret")):
            r = await client.request(method, f"{HOOKS}/{bad_id}{suffix}", headers=admin)
            assert r.status_code in (404, 422), r.text
            assert_problem(r, r.status_code)
    # another tenant's admin gets a 404 for every operation, and changes nothing
    other = tokens.admin("globex")
    for method, suffix in (("GET", ""), ("POST", "/rotate-secret"), ("DELETE", "")):
        assert_problem(await client.request(method, f"{HOOKS}/{eid}{suffix}", headers=other), 404)
    assert (await client.get(HOOKS, headers=other)).json()["items"] == []
    # service and user tokens may not manage endpoints at all
    for headers in (tokens.service(), tokens.user("cand-1")):
        assert_problem(
            await client.post(HOOKS, json={"url": webhook_receiver.url()}, headers=headers), 403
        )
        assert_problem(await client.post(f"{HOOKS}/{eid}/rotate-secret", headers=headers), 403)
        assert_problem(await client.delete(f"{HOOKS}/{eid}", headers=headers), 403)
    # at most 20 per tenant
    for _ in range(19):
        await _hook(hooked, tokens, webhook_receiver)
    assert_problem(
        await client.post(HOOKS, json={"url": webhook_receiver.url()}, headers=admin), 409
    )
    listed = (await client.get(HOOKS, params={"limit": 200}, headers=admin)).json()["items"]
    assert len(listed) == 20 and eid in {e["id"] for e in listed}


async def test_webhook_events_follow_the_spec_and_stay_in_their_tenant(
    hooked: Service,
    tokens: Tokens,
    webhook_receiver_factory: Any,
) -> None:
    ours, theirs = webhook_receiver_factory(), webhook_receiver_factory()
    await _hook(hooked, tokens, ours)
    await _hook(hooked, tokens, theirs, tenant="globex")
    r = await hooked.client.put(
        "/v1/recipients/cand-1", json={"email": "ada@example.test"}, headers=tokens.service()
    )
    assert r.status_code == 201
    accepted = await send(
        hooked.client,
        tokens,
        recipients=["cand-1"],
        title="Interview",
        body="At 10",
        category="interview",
        channels=["in_app", "email", "webhook"],
    )
    await settled(hooked.client, tokens, accepted["id"])
    received = await ours.wait_for_requests_async(2)
    await settled(hooked.client, tokens, accepted["id"])
    assert theirs.requests == []
    by_type = {r.json()["type"]: r for r in received}
    assert set(by_type) == {"notification.created", "delivery.sent"}
    for request in received:
        event = request.json()
        assert list(event) == ["id", "type", "created_at", "tenant", "data"]
        assert event["tenant"] == "acme"
        assert datetime.fromisoformat(event["created_at"]).utcoffset() == timedelta(0)
        assert request.header("content-type") == "application/json"
        assert request.header("tidings-event-id") == event["id"]
        assert request.header("tidings-event-type") == event["type"]
        stamp, *signatures = (request.header("tidings-signature") or "").split(",")
        assert stamp.startswith("t=") and abs(int(stamp[2:]) - datetime.now(UTC).timestamp()) < 60
        assert len(signatures) == 1 and signatures[0].startswith("v1=")
        assert len(signatures[0]) == 3 + 64
        assert request.signature_valid
    created = by_type["notification.created"].json()["data"]
    assert created["recipient_id"] == "cand-1"
    assert created["id"] == accepted["notifications"][0]["id"]
    assert {"title", "body", "category", "priority", "read", "created_at"} <= set(created)
    outcome = by_type["delivery.sent"].json()["data"]
    assert set(outcome) == {
        "delivery_id",
        "send_id",
        "notification_id",
        "recipient_id",
        "channel",
        "status",
        "reason",
        "attempts",
        "provider",
        "provider_message_id",
        "last_error",
    }
    assert (outcome["channel"], outcome["status"], outcome["send_id"]) == (
        "email",
        "sent",
        accepted["id"],
    )


async def test_rotating_twice_signs_with_every_live_secret_and_never_shows_or_logs_them(
    hooked: Service,
    tokens: Tokens,
    webhook_receiver: WebhookReceiver,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = hooked.client
    created = await _hook(hooked, tokens, webhook_receiver, secret="first-secret-" + "a" * 20)
    rotated = []
    for _ in range(2):
        r = await client.post(f"{HOOKS}/{created['id']}/rotate-secret", headers=tokens.admin())
        assert r.status_code == 200, r.text
        rotated.append(r.json()["secret"])
        clock.advance(timedelta(minutes=1))
    every = (created["secret"], *rotated)
    assert len(set(every)) == 3
    webhook_receiver.secrets = every

    async def deliver() -> tuple[str, int]:
        accepted = await send(
            client, tokens, recipients=["cand-1"], title="T", body="b", channels=["webhook"]
        )
        await settled(client, tokens, accepted["id"])
        last = webhook_receiver.requests[-1]
        header = last.header("tidings-signature") or ""
        return ",".join(sorted(last.verified_with)), header.count("v1=")

    assert await deliver() == (",".join(sorted(every)), 3)
    # rotations at T and T+1 min: the original secret ends at T+24 h, the first rotated
    # one at T+24 h+1 min
    clock.advance(timedelta(hours=24) - timedelta(seconds=90))
    assert await deliver() == (",".join(sorted(rotated)), 2)
    clock.advance(timedelta(minutes=1))
    assert await deliver() == (rotated[1], 1)

    answers = [
        (await client.get(HOOKS, headers=tokens.admin())).text,
        (await client.get(f"{HOOKS}/{created['id']}", headers=tokens.admin())).text,
        (await client.get("/v1/deliveries", headers=tokens.admin())).text,
        (await client.get("/v1/recipients/cand-1/export", headers=tokens.service())).text,
    ]
    logged = _our_log(caplog)
    for secret in every:
        assert all(secret not in answer for answer in answers)
        assert secret not in logged


async def test_deleting_an_endpoint_cancels_its_retries_and_sends_nothing_more(
    hooked: Service, tokens: Tokens, webhook_receiver: WebhookReceiver, clock: FrozenClock
) -> None:
    client = hooked.client
    created = await _hook(hooked, tokens, webhook_receiver)
    webhook_receiver.respond(503, headers={"Retry-After": "3600"})
    accepted = await send(
        client, tokens, recipients=["cand-1"], title="T", body="b", channels=["webhook"]
    )
    await webhook_receiver.wait_for_requests_async(1)

    async def retrying() -> bool:
        (row,) = await deliveries(client, tokens, send_id=accepted["id"])
        return bool(row["status"] == "pending" and row["reason"] == "retry")

    await eventually(retrying)
    # an event in flight to the same endpoint when it is deleted still completes
    webhook_receiver.respond(200, delay=0.5)
    in_flight = await send(
        client, tokens, recipients=["cand-2"], title="T", body="b", channels=["webhook"]
    )

    async def in_the_air() -> bool:
        (row,) = await deliveries(client, tokens, send_id=in_flight["id"])
        return bool(row["status"] == "sending")

    await eventually(in_the_air)
    assert (
        await client.delete(f"{HOOKS}/{created['id']}", headers=tokens.admin())
    ).status_code == 204
    assert_problem(await client.delete(f"{HOOKS}/{created['id']}", headers=tokens.admin()), 404)
    (row,) = await deliveries(client, tokens, send_id=accepted["id"])
    assert (row["status"], row["reason"]) == ("cancelled", "target_removed")
    await settled(client, tokens, in_flight["id"])
    (late,) = await deliveries(client, tokens, send_id=in_flight["id"])
    assert late["status"] == "sent"
    clock.advance(timedelta(hours=2))  # far past the cancelled retry's backoff
    await asyncio.sleep(0.3)
    assert len(webhook_receiver.requests) == 2
    (row,) = await deliveries(client, tokens, send_id=accepted["id"])
    assert row["status"] == "cancelled"


# ------------------------------------------------------------- List-Unsubscribe on the wire


def _raw_header(raw: bytes, name: str) -> str | None:
    """A header exactly as sent (unfolded, not decoded): what a mailbox provider reads."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ")
    for line in unfolded.split("\r\n"):
        key, _, value = line.partition(":")
        if key.lower() == name.lower():
            return value.strip()
    return None


async def test_list_unsubscribe_is_sent_as_plain_angle_bracketed_uris(
    tmp_path: Path, database_url: str, tokens: Tokens, smtp_sink: SMTPSink
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_starttls=False,
        public_url="https://notify.acme.test",
        unsubscribe_mailto="unsubscribe@acme.test",
    )
    async with running(settings) as svc:
        r = await svc.client.put(
            "/v1/recipients/cand-1", json={"email": "ada@example.test"}, headers=tokens.service()
        )
        assert r.status_code == 201
        accepted = await send(
            svc.client,
            tokens,
            recipients=["cand-1"],
            title="Offer",
            body="b",
            category="offer",
            channels=["email"],
        )
        await settled(svc.client, tokens, accepted["id"])
        (received,) = await smtp_sink.wait_for_messages_async(1)
        value = _raw_header(received.raw, "List-Unsubscribe")
        assert _raw_header(received.raw, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
        assert value is not None and "=?" not in value, value
        https, mailto = [part.strip() for part in value.split(",")]
        assert https.startswith("<https://notify.acme.test/v1/unsubscribe/") and https.endswith(">")
        assert mailto == "<mailto:unsubscribe@acme.test?subject=unsubscribe>"
        # the link as sent is the one that works
        r = await svc.client.post(
            https[1:-1].removeprefix("https://notify.acme.test"),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": FORM},
        )
        assert r.status_code == 200, r.text


async def test_a_mismatched_vapid_key_pair_is_refused_at_start(
    tmp_path: Path, database_url: str, tokens: Tokens, push_service: PushService
) -> None:
    private, stray = generate_vapid_private_key(), generate_vapid_private_key()
    settings = make_settings(
        tmp_path,
        database_url,
        allow_private_targets=True,
        vapid_private_key=private,
        vapid_public_key=vapid_public_key(stray),
    )
    try:
        async with running(settings) as svc:
            served = (await svc.client.get("/v1/push/vapid-public-key")).json()["public_key"]
            # a browser subscribes with the key it was given
            browser = push_service.subscribe(application_server_key=served)
            r = await svc.client.post(
                ME_PUSH, json=_push_body(browser), headers=tokens.user("cand-1")
            )
            assert r.status_code == 201
            accepted = await send(
                svc.client, tokens, recipients=["cand-1"], title="T", body="B", channels=["push"]
            )
            await settled(svc.client, tokens, accepted["id"])
            (row,) = await deliveries(svc.client, tokens, send_id=accepted["id"])
    except ConfigError:
        return  # refusing to start is a fix too
    assert row["status"] == "sent", row
