"""Which providers deliver each channel: the one place where channel adapters are wired."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from tidings.channels.base import Provider
from tidings.channels.console import ConsoleSMSProvider
from tidings.channels.file import FileEmailProvider
from tidings.channels.smtp import SMTPProvider
from tidings.config import Settings

logger = logging.getLogger(__name__)


class ProviderRegistry:
    """The providers of each channel, in the order the delivery engine should try them.

    Built once at startup (see ``build_registry``; tests pass fakes) and closed once at
    shutdown. A provider may serve several channels; ``aclose`` still closes it once.
    """

    def __init__(self, providers: Mapping[str, Sequence[Provider]]) -> None:
        for channel, entries in providers.items():
            for provider in entries:
                if provider.channel != channel:
                    raise ValueError(
                        f"provider {provider.name!r} serves channel {provider.channel!r}, "
                        f"not {channel!r}"
                    )
        self._providers = {channel: list(entries) for channel, entries in providers.items()}
        self._closed = False

    def for_channel(self, channel: str) -> list[Provider]:
        """Return the providers of ``channel`` in order of preference; empty if none."""
        return list(self._providers.get(channel, ()))

    def channels(self) -> set[str]:
        """Return the channels that have at least one provider."""
        return {channel for channel, entries in self._providers.items() if entries}

    async def aclose(self) -> None:
        """Close every provider once; a provider that fails to close does not stop the rest."""
        if self._closed:
            return
        self._closed = True
        seen: set[int] = set()
        for entries in self._providers.values():
            for provider in entries:
                if id(provider) in seen:
                    continue
                seen.add(id(provider))
                try:
                    await provider.aclose()
                except Exception:
                    logger.exception("closing provider %r failed", provider.name)


def build_registry(settings: Settings) -> ProviderRegistry:
    """Wire the providers the configuration asks for.

    E-mail goes through SMTP when ``TIDINGS_SMTP_HOST`` is set and into ``.eml`` files in
    the data directory otherwise; SMS is logged to the console.
    """
    email: Provider
    if settings.smtp_host:
        email = SMTPProvider(settings)
    else:
        email = FileEmailProvider(settings.mail_dir, default_sender=settings.smtp_from)
    return ProviderRegistry({"email": [email], "sms": [ConsoleSMSProvider()]})
