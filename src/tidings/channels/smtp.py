"""E-mail over SMTP with aiosmtplib, through a small pool of reused connections."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from dataclasses import dataclass, field
from email.utils import parseaddr

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPDataError,
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
)

from tidings.channels.base import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
    SendResult,
)
from tidings.channels.email import WIRE_POLICY, build_mime, envelope
from tidings.config import ConfigError, Settings

logger = logging.getLogger(__name__)

# Servers drop idle sessions after a while (often 60-300 s) without the client noticing
# a half-open socket; past this age an idle connection is checked with NOOP first.
IDLE_CHECK_SECONDS = 15.0
# Some servers cap the messages per session; starting afresh now and then stays below it.
MAX_MESSAGES_PER_CONNECTION = 100
# 530 "authentication required" and 535 "bad credentials" are operator mistakes, not
# properties of the message: once the configuration is fixed, a retry succeeds.
_CONFIGURATION_CODES = frozenset({530, 534, 535, 538})


@dataclass(slots=True)
class _Connection:
    client: SMTP
    last_used: float = field(default_factory=time.monotonic)
    sent: int = 0


class SMTPProvider:
    """Send e-mail through one SMTP server, reusing up to ``smtp_pool_size`` connections.

    A LIFO queue holds one slot per allowed connection: an idle connection, or ``None``
    for one not opened yet. A send takes a slot (so at most ``smtp_pool_size`` sends run
    at once), connects lazily, and gives the slot back. A connection that failed in any
    way is dropped rather than reused, since its session state is unknown.

    Errors map onto the channel port: transport failures, timeouts and 4xx replies are
    retryable; a 5xx reply at RCPT rejects the address; a 5xx reply to MAIL or DATA
    fails the message; authentication and connection-time refusals stay retryable,
    because fixing the configuration makes them succeed.
    """

    name = "smtp"
    channel = "email"

    def __init__(
        self,
        settings: Settings,
        *,
        tls_context: ssl.SSLContext | None = None,
        name: str = "smtp",
    ) -> None:
        self.name = name
        if not settings.smtp_host:
            raise ConfigError("TIDINGS_SMTP_HOST is required for the SMTP provider")
        if "@" not in parseaddr(settings.smtp_from)[1]:
            raise ConfigError("TIDINGS_SMTP_FROM must contain an e-mail address")
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._username = settings.smtp_username
        self._password = (
            settings.smtp_password.get_secret_value() if settings.smtp_password else None
        )
        self._use_tls = settings.smtp_tls
        self._start_tls = settings.smtp_starttls and not settings.smtp_tls
        self._timeout = settings.smtp_timeout_seconds
        self._tls_context = tls_context
        self._default_sender = settings.smtp_from
        self._local_hostname: str | None = None
        self._slots: asyncio.LifoQueue[_Connection | None] = asyncio.LifoQueue()
        for _ in range(settings.smtp_pool_size):
            self._slots.put_nowait(None)
        self._closed = False

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver ``message`` to its target address; see the class docstring for errors."""
        mime = build_mime(message, default_sender=self._default_sender)
        message_id = str(mime["Message-ID"])
        sender, recipient = envelope(mime)

        connection = await self._slots.get()
        if self._closed:
            self._slots.put_nowait(connection)
            raise RetryableSendError("the SMTP provider is closed", code="closed")
        healthy = False
        try:
            try:
                connection = await self._ready(connection)
            except (SMTPException, OSError) as exc:
                raise _connect_error(exc) from exc
            try:
                wire = mime.as_bytes(policy=WIRE_POLICY)
                if wire.isascii():
                    _, response = await connection.client.sendmail(sender, [recipient], wire)
                else:  # internationalised addresses: let aiosmtplib negotiate SMTPUTF8
                    _, response = await connection.client.send_message(
                        mime, sender=sender, recipients=[recipient]
                    )
            # ValueError: aiosmtplib refuses addresses that could inject SMTP commands
            except (SMTPException, OSError, ValueError) as exc:
                raise _send_error(exc) from exc
            connection.sent += 1
            connection.last_used = time.monotonic()
            if connection.sent >= MAX_MESSAGES_PER_CONNECTION or self._closed:
                await self._quit(connection)
                connection = None
            healthy = True
        finally:
            # Runs on cancellation too: a half-used session must never go back to the pool.
            if not healthy and connection is not None:
                connection.client.close()
                connection = None
            self._slots.put_nowait(connection)
        return SendResult(
            provider=self.name, provider_message_id=message_id, info={"response": response}
        )

    async def aclose(self) -> None:
        """Say QUIT on every idle connection; connections in use close when their send ends."""
        if self._closed:
            return
        self._closed = True
        idle: list[_Connection] = []
        while not self._slots.empty():
            connection = self._slots.get_nowait()
            if connection is not None:
                idle.append(connection)
            # Leave a slot so that a send waiting for one wakes up and sees the closed flag.
        self._slots.put_nowait(None)
        await asyncio.gather(*(self._quit(connection) for connection in idle))

    async def _ready(self, connection: _Connection | None) -> _Connection:
        if connection is not None:
            if not connection.client.is_connected:
                connection.client.close()
                connection = None
            elif time.monotonic() - connection.last_used > IDLE_CHECK_SECONDS:
                try:
                    await connection.client.noop()
                except (SMTPException, OSError):
                    logger.debug("SMTP connection went stale while idle; reconnecting")
                    connection.client.close()
                    connection = None
        if connection is None:
            connection = await self._connect()
        return connection

    async def _connect(self) -> _Connection:
        if self._local_hostname is None:
            # getfqdn may block on DNS: do it once and off the event loop
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            local_hostname=self._local_hostname,
            use_tls=self._use_tls,
            start_tls=self._start_tls,
            tls_context=self._tls_context,
            timeout=self._timeout,
        )
        await client.connect()
        logger.debug("opened SMTP connection to %s:%s", self._host, self._port)
        return _Connection(client)

    async def _quit(self, connection: _Connection) -> None:
        try:
            await connection.client.quit()
        except (SMTPException, OSError):
            pass
        finally:
            connection.client.close()


def _connect_error(exc: Exception) -> SendError:
    if isinstance(exc, SMTPAuthenticationError):
        return RetryableSendError(
            f"SMTP authentication failed ({exc.code} {exc.message}); check "
            "TIDINGS_SMTP_USERNAME and TIDINGS_SMTP_PASSWORD",
            code=exc.code,
        )
    if isinstance(exc, SMTPResponseException):
        return RetryableSendError(
            f"SMTP server refused the session: {exc.code} {exc.message}", code=exc.code
        )
    return _transport_error(exc)


def _send_error(exc: Exception) -> SendError:
    if isinstance(exc, SMTPRecipientsRefused):
        # one envelope recipient per delivery, so the first refusal is the refusal
        return _recipient_error(exc.recipients[0]) if exc.recipients else _transport_error(exc)
    if isinstance(exc, SMTPRecipientRefused):
        return _recipient_error(exc)
    if isinstance(exc, SMTPResponseException):
        text = f"SMTP server refused the message: {exc.code} {exc.message}"
        permanent = exc.code >= 500 and exc.code not in _CONFIGURATION_CODES
        if permanent and isinstance(exc, SMTPSenderRefused | SMTPDataError):
            return PermanentSendError(text, code=exc.code)
        return RetryableSendError(text, code=exc.code)
    if isinstance(exc, ValueError):
        return PermanentSendError(str(exc), code="invalid_address", address_rejected=True)
    if isinstance(exc, SMTPNotSupported):
        # a non-ASCII address and a server without SMTPUTF8: no retry changes that
        return PermanentSendError(str(exc), code="smtputf8")
    return _transport_error(exc)


def _recipient_error(exc: SMTPRecipientRefused) -> SendError:
    text = f"SMTP server refused recipient {exc.recipient}: {exc.code} {exc.message}"
    if exc.code >= 500 and exc.code not in _CONFIGURATION_CODES:
        return PermanentSendError(text, code=exc.code, address_rejected=True)
    return RetryableSendError(text, code=exc.code)


def _transport_error(exc: Exception) -> SendError:
    if isinstance(exc, TimeoutError):
        return RetryableSendError(f"SMTP timeout: {exc}", code="timeout")
    if isinstance(exc, OSError):
        return RetryableSendError(f"SMTP connection failed: {exc}", code="connection")
    # other SMTPException: STARTTLS or the AUTH method not offered, SMTPUTF8 missing...
    return RetryableSendError(f"SMTP error: {exc}", code="smtp")
