from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.smtp_sink import SinkFactory, SMTPSink, free_port
from tidings.channels.base import (
    Attachment,
    EmailContent,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
)
from tidings.channels.file import FileEmailProvider
from tidings.channels.smtp import SMTPProvider
from tidings.config import ConfigError, Settings
from tidings.kit.ids import uuid7

USER, PASSWORD = "tidings", "s3cret-for-the-test-sink-only-0123456789"
ProviderFactory = Callable[..., SMTPProvider]


def make_message(target: str = "ann@example.com", **overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "delivery_id": uuid7(),
        "tenant": "acme",
        "channel": "email",
        "target": target,
        "category": "application",
        "priority": "normal",
        "title": "Your application",
        "body": "Thanks",
        "email": EmailContent(
            subject="Your application", text="Grüße, Ann", html="<p>Grüße, Ann</p>"
        ),
        "sender": "Acme Hiring <jobs@acme.example>",
    }
    values.update(overrides)
    return OutboundMessage(**values)


@pytest.fixture
async def provider_factory() -> AsyncIterator[ProviderFactory]:
    providers: list[SMTPProvider] = []

    def make(
        sink_port: int, *, tls_context: ssl.SSLContext | None = None, **overrides: Any
    ) -> SMTPProvider:
        values: dict[str, Any] = {
            "smtp_host": "127.0.0.1",
            "smtp_port": sink_port,
            "smtp_starttls": False,
            "smtp_tls": False,
            "smtp_timeout_seconds": 5.0,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, env="development", **values)  # type: ignore[call-arg]
        provider = SMTPProvider(settings, tls_context=tls_context)
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        await provider.aclose()


def parts(message: EmailMessage) -> dict[str, str]:
    # parsed from the wire, the bodies keep their CRLF line ends
    return {
        part.get_content_type(): part.get_content().replace("\r\n", "\n")
        for part in message.iter_parts()
    }


async def test_plain_delivery(smtp_sink: SMTPSink, provider_factory: ProviderFactory) -> None:
    provider = provider_factory(smtp_sink.port)
    message = make_message()

    result = await provider.send(message)

    (received,) = smtp_sink.messages
    mime = received.message
    assert received.mail_from == "jobs@acme.example"
    assert received.rcpt_tos == ["ann@example.com"]
    assert result.provider == "smtp"
    assert result.provider_message_id == mime["Message-ID"]
    assert mime["Message-ID"] == f"<{message.delivery_id}@acme.example>"
    assert parsedate_to_datetime(mime["Date"]).tzinfo is not None
    assert parts(mime) == {"text/plain": "Grüße, Ann\n", "text/html": "<p>Grüße, Ann</p>\n"}


async def test_calendar_attachment_survives_the_wire(
    smtp_sink: SMTPSink, provider_factory: ProviderFactory
) -> None:
    ics = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    message = make_message(
        attachments=(Attachment("invite.ics", "text/calendar; method=REQUEST", ics),)
    )

    await provider_factory(smtp_sink.port).send(message)

    (received,) = smtp_sink.messages
    # an invitation travels twice: inline, where mail clients show it as one, and as a file
    inline = [p for p in received.message.walk() if p.get_content_type() == "text/calendar"]
    assert len(inline) == 1 and inline[0].get_param("method") == "REQUEST"
    assert inline[0].get_payload(decode=True) == ics
    attachment = next(received.message.iter_attachments())
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_payload(decode=True) == ics


@pytest.mark.parametrize(
    ("tls", "provider_tls"),
    [
        pytest.param("starttls", {"smtp_starttls": True}, id="starttls"),
        pytest.param("implicit", {"smtp_tls": True}, id="implicit-tls"),
    ],
)
async def test_tls_with_auth(
    smtp_sink_factory: SinkFactory,
    provider_factory: ProviderFactory,
    tls: str,
    provider_tls: dict[str, bool],
) -> None:
    sink = smtp_sink_factory(tls=tls, auth=(USER, PASSWORD))
    provider = provider_factory(
        sink.port,
        tls_context=sink.client_tls_context(),
        smtp_username=USER,
        smtp_password=PASSWORD,
        **provider_tls,
    )

    await provider.send(make_message())
    await provider.send(make_message())

    assert [m.authenticated_as for m in sink.messages] == [USER, USER]
    assert sink.connections == 1


async def test_untrusted_certificate_is_retryable(
    smtp_sink_factory: SinkFactory, provider_factory: ProviderFactory
) -> None:
    sink = smtp_sink_factory(tls="implicit")
    other = smtp_sink_factory(tls="implicit")
    provider = provider_factory(sink.port, tls_context=other.client_tls_context(), smtp_tls=True)

    with pytest.raises(RetryableSendError) as caught:
        await provider.send(make_message())

    assert caught.value.code == "connection"
    assert sink.messages == []


async def test_wrong_password_is_retryable(
    smtp_sink_factory: SinkFactory, provider_factory: ProviderFactory
) -> None:
    sink = smtp_sink_factory(tls="starttls", auth=(USER, PASSWORD))
    provider = provider_factory(
        sink.port,
        tls_context=sink.client_tls_context(),
        smtp_starttls=True,
        smtp_username=USER,
        smtp_password="wrong-" + PASSWORD,
    )

    with pytest.raises(RetryableSendError) as caught:
        await provider.send(make_message())

    assert caught.value.code == 535


async def test_pool_reuses_at_most_pool_size_connections(
    smtp_sink: SMTPSink, provider_factory: ProviderFactory
) -> None:
    provider = provider_factory(smtp_sink.port, smtp_pool_size=2)
    messages = [make_message(f"user{n}@example.com") for n in range(20)]

    results = await asyncio.gather(*(provider.send(message) for message in messages))

    assert len(results) == 20
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == sorted(m.target for m in messages)
    assert 1 <= smtp_sink.connections <= 2


@pytest.mark.parametrize(
    ("code", "text", "error", "address_rejected"),
    [
        pytest.param(550, "5.1.1 No such user", PermanentSendError, True, id="550"),
        pytest.param(553, "5.1.3 Bad address syntax", PermanentSendError, True, id="553"),
        pytest.param(450, "4.2.1 Mailbox busy", RetryableSendError, None, id="450"),
        pytest.param(530, "5.7.0 Authentication required", RetryableSendError, None, id="530"),
    ],
)
async def test_recipient_refused(
    smtp_sink: SMTPSink,
    provider_factory: ProviderFactory,
    code: int,
    text: str,
    error: type[Exception],
    address_rejected: bool | None,
) -> None:
    provider = provider_factory(smtp_sink.port)
    smtp_sink.fail_rcpt["gone@example.com"] = (code, text)

    with pytest.raises(error) as caught:
        await provider.send(make_message("gone@example.com"))

    assert getattr(caught.value, "code", None) == code
    if address_rejected is not None:
        assert isinstance(caught.value, PermanentSendError)
        assert caught.value.address_rejected is address_rejected
    # the pool recovers: the next message goes through
    await provider.send(make_message())
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["ann@example.com"]]


async def test_temporary_failure_at_data_is_retryable(
    smtp_sink: SMTPSink, provider_factory: ProviderFactory
) -> None:
    provider = provider_factory(smtp_sink.port)
    smtp_sink.fail_data_times = 1
    message = make_message()

    with pytest.raises(RetryableSendError) as caught:
        await provider.send(message)
    retry = await provider.send(message)

    assert caught.value.code == 451
    (received,) = smtp_sink.messages
    assert received.message["Message-ID"] == retry.provider_message_id


async def test_server_down_is_retryable(provider_factory: ProviderFactory) -> None:
    provider = provider_factory(free_port(), smtp_timeout_seconds=2.0)

    with pytest.raises(RetryableSendError) as caught:
        await provider.send(make_message())

    assert caught.value.code == "connection"


async def test_connection_closed_by_the_server_while_idle_is_replaced(
    smtp_sink_factory: SinkFactory, provider_factory: ProviderFactory
) -> None:
    sink = smtp_sink_factory(idle_timeout=0.2)
    provider = provider_factory(sink.port)

    await provider.send(make_message())
    await asyncio.sleep(0.5)
    await provider.send(make_message())

    assert len(sink.messages) == 2
    assert sink.connections == 2


async def test_send_after_aclose_is_retryable(
    smtp_sink: SMTPSink, provider_factory: ProviderFactory
) -> None:
    provider = provider_factory(smtp_sink.port)
    await provider.send(make_message())

    await provider.aclose()

    with pytest.raises(RetryableSendError):
        await provider.send(make_message())


async def test_file_provider_writes_parseable_eml(tmp_path: Path) -> None:
    mail_dir = tmp_path / "data" / "mail"
    provider = FileEmailProvider(mail_dir, default_sender="Tidings <no-reply@tidings.example>")
    message = make_message(sender=None)

    first = await provider.send(message)
    again = await provider.send(message)

    path = mail_dir / f"{message.delivery_id}.eml"
    assert [p.name for p in mail_dir.iterdir()] == [path.name]
    parsed = BytesParser(policy=default_policy).parsebytes(path.read_bytes())
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == f"<{message.delivery_id}@tidings.example>"
    assert first.provider == "file"
    assert first.provider_message_id == again.provider_message_id == parsed["Message-ID"]
    assert parsed["To"] == "ann@example.com"
    assert parts(parsed) == {"text/plain": "Grüße, Ann\n", "text/html": "<p>Grüße, Ann</p>\n"}


@pytest.mark.parametrize(
    ("overrides", "address_rejected"),
    [
        pytest.param({"sender": "no-address"}, False, id="sender-without-address"),
        pytest.param({"target": "ann@example.com> NOTIFY=NEVER"}, True, id="smuggled-parameter"),
        pytest.param({"target": "ann@example.com\r\nRSET"}, True, id="header-injection"),
    ],
)
async def test_unsendable_addresses_fail_permanently(
    smtp_sink: SMTPSink,
    provider_factory: ProviderFactory,
    overrides: dict[str, Any],
    address_rejected: bool,
) -> None:
    provider = provider_factory(smtp_sink.port)

    with pytest.raises(PermanentSendError) as caught:
        await provider.send(make_message(**overrides))

    assert caught.value.address_rejected is address_rejected
    assert smtp_sink.messages == []


def test_from_setting_needs_an_address() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, env="development", smtp_host="127.0.0.1", smtp_from="Tidings"
    )

    with pytest.raises(ConfigError, match="TIDINGS_SMTP_FROM"):
        SMTPProvider(settings)
