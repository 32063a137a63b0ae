from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tidings.channels.base import OutboundMessage, PermanentSendError, Provider, SendResult
from tidings.channels.console import ConsoleSMSProvider
from tidings.channels.file import FileEmailProvider
from tidings.channels.ratelimited import RateLimitedProvider
from tidings.channels.registry import ProviderRegistry, build_registry
from tidings.channels.smtp import SMTPProvider
from tidings.channels.twilio import TwilioProvider
from tidings.config import ConfigError, Settings


class FakeProvider:
    def __init__(self, name: str, channel: str, *, fail_close: bool = False) -> None:
        self.name = name
        self.channel = channel
        self.closed = 0
        self.fail_close = fail_close

    async def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(provider=self.name)

    async def aclose(self) -> None:
        self.closed += 1
        if self.fail_close:
            raise RuntimeError("boom")


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(_env_file=None, env="development", data_dir=tmp_path, **overrides)  # type: ignore[call-arg]


_CLIENT = httpx.AsyncClient()


def build(config: Settings, environ: dict[str, str] | None = None) -> ProviderRegistry:
    return build_registry(config, http=_CLIENT, outbound_http=_CLIENT, environ=environ or {})


def test_fake_provider_satisfies_the_protocol() -> None:
    assert isinstance(FakeProvider("x", "email"), Provider)


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        pytest.param("email", ["primary", "backup"], id="ordered"),
        pytest.param("sms", ["sms"], id="single"),
        pytest.param("push", [], id="unknown-channel"),
        pytest.param("webhook", [], id="configured-empty"),
    ],
)
def test_for_channel(channel: str, expected: list[str]) -> None:
    registry = ProviderRegistry(
        {
            "email": [FakeProvider("primary", "email"), FakeProvider("backup", "email")],
            "sms": [FakeProvider("sms", "sms")],
            "webhook": [],
        }
    )

    assert [provider.name for provider in registry.for_channel(channel)] == expected


def test_for_channel_returns_a_copy() -> None:
    registry = ProviderRegistry({"email": [FakeProvider("primary", "email")]})

    registry.for_channel("email").clear()

    assert len(registry.for_channel("email")) == 1


def test_channels_lists_only_channels_with_providers() -> None:
    registry = ProviderRegistry(
        {"email": [FakeProvider("e", "email")], "sms": [FakeProvider("s", "sms")], "push": []}
    )

    assert registry.channels() == {"email", "sms"}


def test_provider_under_the_wrong_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="serves channel 'sms'"):
        ProviderRegistry({"email": [FakeProvider("s", "sms")]})


async def test_aclose_closes_each_provider_once() -> None:
    shared = FakeProvider("shared", "email")
    failing = FakeProvider("failing", "sms", fail_close=True)
    other = FakeProvider("other", "sms")
    registry = ProviderRegistry({"email": [shared, shared], "sms": [failing, other]})

    await registry.aclose()
    await registry.aclose()

    assert (shared.closed, failing.closed, other.closed) == (1, 1, 1)


async def test_build_registry_without_smtp_host_writes_files(tmp_path: Path) -> None:
    registry = build(settings(tmp_path))

    (email,) = registry.for_channel("email")
    (sms,) = registry.for_channel("sms")
    assert isinstance(email, FileEmailProvider)
    assert email.mail_dir == tmp_path / "mail"
    assert isinstance(sms, ConsoleSMSProvider)
    assert registry.channels() == {"email", "sms", "webhook"}
    await registry.aclose()


async def test_build_registry_with_smtp_host_uses_smtp(tmp_path: Path) -> None:
    registry = build(settings(tmp_path, smtp_host="mail.example"))

    (email,) = registry.for_channel("email")
    assert isinstance(email, SMTPProvider)
    assert (email.name, email.channel) == ("smtp", "email")
    await registry.aclose()


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        pytest.param("+15551234567", "***4567", id="e164"),
        pytest.param("+44 20 7946 0018", "***0018", id="spaced"),
        pytest.param("1234", "***", id="too-short-to-show"),
    ],
)
async def test_development_sms_is_logged_redacted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, target: str, shown: str
) -> None:
    (sms,) = build(settings(tmp_path)).for_channel("sms")
    message = OutboundMessage(
        delivery_id="d-1",
        tenant="acme",
        channel="sms",
        target=target,
        category="reminder",
        priority="high",
        title="Interview",
        body="Interview at 10:00",
        sms_text="Interview at 10:00",
    )

    with caplog.at_level("INFO", logger="tidings.channels.console"):
        result = await sms.send(message)

    assert result == SendResult(provider="console", provider_message_id="console-d-1")
    (record,) = caplog.records
    assert record.getMessage() == f"SMS to {shown}: Interview at 10:00"
    assert target not in record.getMessage()


async def test_development_sms_without_text_fails_permanently(tmp_path: Path) -> None:
    (sms,) = build(settings(tmp_path)).for_channel("sms")
    message = OutboundMessage(
        delivery_id="d-1",
        tenant="acme",
        channel="sms",
        target="+15551234567",
        category="reminder",
        priority="high",
        title="t",
        body="b",
    )

    with pytest.raises(PermanentSendError):
        await sms.send(message)


async def test_named_providers_follow_the_built_in_ones(tmp_path: Path) -> None:
    config = settings(
        tmp_path,
        providers="backup_sms,eu_mail",
        twilio_account_sid="AC1",
        twilio_auth_token="token-1",
        twilio_from="+15550001111",
        vapid_private_key=None,
    )
    environ = {
        "TIDINGS_PROVIDER_BACKUP_SMS_TYPE": "twilio",
        "TIDINGS_PROVIDER_BACKUP_SMS_ACCOUNT_SID": "AC2",
        "TIDINGS_PROVIDER_BACKUP_SMS_AUTH_TOKEN": "token-2",
        "TIDINGS_PROVIDER_BACKUP_SMS_MESSAGING_SERVICE_SID": "MG2",
        "TIDINGS_PROVIDER_EU_MAIL_TYPE": "smtp",
        "TIDINGS_PROVIDER_EU_MAIL_HOST": "smtp.eu.example",
        "TIDINGS_PROVIDER_EU_MAIL_PORT": "2525",
        "TIDINGS_PROVIDER_TWILIO_RATE_PER_SECOND": "5",
    }
    registry = build(config, environ)

    assert registry.names("sms") == ["twilio", "backup_sms"]
    assert registry.names("email") == ["file", "eu_mail"]
    assert [p.name for p in registry.for_channel("sms", ["backup_sms"])] == ["backup_sms"]
    assert [p.name for p in registry.for_channel("sms", ["backup_sms", "nope", "twilio"])] == [
        "backup_sms",
        "twilio",
    ]
    twilio, backup = registry.for_channel("sms")
    assert isinstance(twilio, RateLimitedProvider)  # TIDINGS_PROVIDER_TWILIO_RATE_PER_SECOND
    assert twilio.sender_key == "+15550001111"
    assert isinstance(backup, TwilioProvider)
    assert backup.sender_key == "MG2"
    (_file, eu) = registry.for_channel("email")
    assert isinstance(eu, SMTPProvider)
    assert eu.name == "eu_mail"
    await registry.aclose()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param({}, "TIDINGS_PROVIDER_EXTRA_TYPE", id="no-type"),
        pytest.param({"TIDINGS_PROVIDER_EXTRA_TYPE": "pigeon"}, "must be one of", id="bad-type"),
        pytest.param(
            {"TIDINGS_PROVIDER_EXTRA_TYPE": "twilio"}, "ACCOUNT_SID is required", id="no-sid"
        ),
        pytest.param(
            {
                "TIDINGS_PROVIDER_EXTRA_TYPE": "console",
                "TIDINGS_PROVIDER_EXTRA_RATE_PER_SECOND": "x",
            },
            "must be numbers",
            id="bad-rate",
        ),
    ],
)
def test_named_provider_misconfiguration_is_a_clear_error(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build(settings(tmp_path, providers="extra"), environ)


def test_provider_names_are_unique(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unique"):
        build(
            settings(tmp_path, providers="console"),
            {"TIDINGS_PROVIDER_CONSOLE_TYPE": "console"},
        )
