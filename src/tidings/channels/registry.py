"""Which providers deliver each channel: the one place where channel adapters are wired."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import httpx
from pydantic import ValidationError

from tidings.channels.base import Provider
from tidings.channels.console import ConsoleSMSProvider
from tidings.channels.file import FileEmailProvider
from tidings.channels.ratelimited import RateLimitedProvider
from tidings.channels.smtp import SMTPProvider
from tidings.channels.twilio import TwilioConfig, TwilioProvider
from tidings.channels.webhook import WebhookProvider
from tidings.channels.webpush import WebPushProvider
from tidings.config import ConfigError, Settings
from tidings.kit.ratelimit import MemoryRateLimiter, RateLimiter

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

    def for_channel(self, channel: str, order: Sequence[str] | None = None) -> list[Provider]:
        """The providers of ``channel`` in order of preference; empty if none.

        ``order`` (a tenant's choice) names the providers to use, first to last; names
        that are not configured for the channel are skipped.
        """
        entries = self._providers.get(channel, [])
        if not order:
            return list(entries)
        by_name = {provider.name: provider for provider in entries}
        return [by_name[name] for name in order if name in by_name]

    def names(self, channel: str) -> list[str]:
        """The names of the channel's providers, in configuration order."""
        return [provider.name for provider in self._providers.get(channel, [])]

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


def build_registry(
    settings: Settings,
    *,
    http: httpx.AsyncClient,
    outbound_http: httpx.AsyncClient,
    vapid_private_key: str | None = None,
    limiter: RateLimiter | None = None,
    environ: Mapping[str, str] | None = None,
) -> ProviderRegistry:
    """Wire the providers the configuration asks for.

    Built in: e-mail through SMTP when ``TIDINGS_SMTP_HOST`` is set, into ``.eml`` files
    in the data directory otherwise; SMS through Twilio when ``TIDINGS_TWILIO_ACCOUNT_SID``
    is set, logged to the console otherwise; Web Push with the VAPID key; webhooks.
    ``TIDINGS_PROVIDERS`` adds named instances (``TIDINGS_PROVIDER_<NAME>_TYPE`` and the
    type's options), which come after the built-in one of their channel. Any provider
    with ``TIDINGS_PROVIDER_<NAME>_RATE_PER_SECOND`` is rate limited through ``limiter``.

    ``http`` serves providers whose address is operator configuration (Twilio);
    ``outbound_http`` guards targets that users register (push endpoints, webhooks).
    """
    built: list[Provider] = []
    if settings.smtp_host:
        built.append(SMTPProvider(settings))
    else:
        built.append(FileEmailProvider(settings.mail_dir, default_sender=settings.smtp_from))
    callback = f"{settings.public_url}/v1/providers/twilio/status"
    if settings.twilio_account_sid and settings.twilio_auth_token:
        config = TwilioConfig(
            name="twilio",
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            from_number=settings.twilio_from,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            base_url=settings.twilio_base_url,
            status_callback_url=callback,
        )
        built.append(TwilioProvider(config, client=http))
    else:
        built.append(ConsoleSMSProvider())
    if vapid_private_key:
        built.append(
            WebPushProvider(
                private_key=vapid_private_key, subject=settings.push_subject, client=outbound_http
            )
        )
    built.append(WebhookProvider(client=outbound_http))
    for name in settings.provider_names:
        options = settings.provider_options(name, environ)
        built.append(_named(settings, name, options, http=http, callback=callback))
    names = [provider.name for provider in built]
    if len(set(names)) != len(names):
        raise ConfigError(f"provider names must be unique: {', '.join(names)}")
    providers: dict[str, list[Provider]] = {}
    for provider in built:
        options = settings.provider_options(provider.name, environ)
        if "rate_per_second" in options:
            provider = _rate_limited(provider, options, limiter)
        providers.setdefault(provider.channel, []).append(provider)
    return ProviderRegistry(providers)


def _named(
    settings: Settings,
    name: str,
    options: Mapping[str, str],
    *,
    http: httpx.AsyncClient,
    callback: str,
) -> Provider:
    """One ``TIDINGS_PROVIDERS`` instance from its ``TIDINGS_PROVIDER_<NAME>_*`` options."""
    prefix = f"TIDINGS_PROVIDER_{name.upper()}_"
    kind = options.get("type", "")

    def need(option: str) -> str:
        value = options.get(option)
        if not value:
            raise ConfigError(f"{prefix}{option.upper()} is required for a {kind} provider")
        return value

    if kind == "twilio":
        try:
            config = TwilioConfig(
                name=name,
                account_sid=need("account_sid"),
                auth_token=need("auth_token"),
                from_number=options.get("from"),
                messaging_service_sid=options.get("messaging_service_sid"),
                base_url=options.get("base_url", "https://api.twilio.com").rstrip("/"),
                status_callback_url=callback,
            )
        except ValueError as exc:
            raise ConfigError(f"{prefix}*: {exc}") from None
        return TwilioProvider(config, client=http)
    if kind == "smtp":
        update: dict[str, object] = {"smtp_host": need("host")}
        for option in ("port", "username", "password", "starttls", "tls", "from", "pool_size"):
            if option in options:
                update[f"smtp_{option}"] = options[option]
        try:
            smtp_settings = Settings.model_validate({**settings.model_dump(), **update})
        except ValidationError as exc:
            raise ConfigError(f"{prefix}*: {exc}") from None
        return SMTPProvider(smtp_settings, name=name)
    if kind == "file":
        return FileEmailProvider(settings.mail_dir / name, name=name)
    if kind == "console":
        return ConsoleSMSProvider(name=name)
    raise ConfigError(f"{prefix}TYPE must be one of twilio, smtp, file, console (got {kind!r})")


def _rate_limited(
    provider: Provider, options: Mapping[str, str], limiter: RateLimiter | None
) -> Provider:
    prefix = f"TIDINGS_PROVIDER_{provider.name.upper()}_"
    try:
        rate = float(options["rate_per_second"])
        burst = float(options.get("burst", max(1.0, rate)))
    except ValueError:
        raise ConfigError(f"{prefix}RATE_PER_SECOND and _BURST must be numbers") from None
    if rate <= 0 or burst < 1:
        raise ConfigError(f"{prefix}RATE_PER_SECOND must be > 0 and _BURST >= 1")
    return RateLimitedProvider(provider, limiter or MemoryRateLimiter(), rate=rate, burst=burst)
