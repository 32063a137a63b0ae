"""Development e-mail: each message becomes an ``.eml`` file instead of being sent."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from tidings.channels.base import OutboundMessage, RetryableSendError, SendResult
from tidings.channels.email import WIRE_POLICY, build_mime

DEFAULT_SENDER = "Tidings <no-reply@localhost>"


class FileEmailProvider:
    """Write each e-mail, exactly as SMTP would carry it, to ``<mail_dir>/<delivery_id>.eml``.

    Files appear atomically (written aside, then renamed), so a reader never sees half a
    message. A delivery that already has its file is not written again: retries of one
    delivery leave one file.
    """

    name = "file"
    channel = "email"

    def __init__(
        self, mail_dir: Path, *, default_sender: str = DEFAULT_SENDER, name: str = "file"
    ) -> None:
        self.name = name
        self.mail_dir = mail_dir
        self._default_sender = default_sender

    async def send(self, message: OutboundMessage) -> SendResult:
        """Write ``message`` as an ``.eml`` file; IO failures are retryable."""
        # build_mime also vets the delivery id, which makes it safe as a file name
        mime = build_mime(message, default_sender=self._default_sender)
        path = self.mail_dir / f"{message.delivery_id}.eml"
        try:
            await asyncio.to_thread(_write_once, path, mime.as_bytes(policy=WIRE_POLICY))
        except OSError as exc:
            raise RetryableSendError(f"cannot write {path}: {exc}", code="io") from exc
        return SendResult(
            provider=self.name,
            provider_message_id=str(mime["Message-ID"]),
            info={"path": str(path)},
        )

    async def aclose(self) -> None:
        """Nothing to release."""


def _write_once(path: Path, data: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
