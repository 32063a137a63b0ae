"""Development SMS: messages are logged instead of sent."""

from __future__ import annotations

import logging

from tidings.channels.base import OutboundMessage, PermanentSendError, SendResult

logger = logging.getLogger("tidings.channels.console")


class ConsoleSMSProvider:
    """Log each SMS at INFO on ``tidings.channels.console``, the number cut to its last digits."""

    name = "console"
    channel = "sms"

    def __init__(self, name: str = "console") -> None:
        self.name = name

    async def send(self, message: OutboundMessage) -> SendResult:
        """Log ``message``; a message without SMS text fails permanently."""
        if message.sms_text is None:
            raise PermanentSendError("the message has no rendered SMS text")
        target = redact_number(message.target)
        logger.info(
            "SMS to %s: %s",
            target,
            message.sms_text,
            extra={"delivery_id": message.delivery_id, "target": target},
        )
        return SendResult(provider=self.name, provider_message_id=f"console-{message.delivery_id}")

    async def aclose(self) -> None:
        """Nothing to release."""


def redact_number(number: str) -> str:
    """Keep only the last four digits of a phone number: ``+15551234567`` -> ``***4567``."""
    digits = "".join(char for char in number if char.isdigit())
    # a short number would be disclosed whole by its last four digits
    return f"***{digits[-4:]}" if len(digits) > 4 else "***"
