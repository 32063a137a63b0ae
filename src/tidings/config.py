"""Configuration: one Settings object read from ``TIDINGS_*`` variables and ``.env``."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WEAK_SECRETS = frozenset({"changeme", "secret", "your-secret-key", "your_jwt_secret", "password"})
MIN_SECRET_BYTES = 32
_PROVIDER_NAME = re.compile(r"[a-z0-9_]{1,32}")


class ConfigError(Exception):
    """The configuration is invalid; the message names every bad value."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TIDINGS_", env_file=".env", extra="ignore", validate_default=True
    )

    env: Literal["development", "production"] = "production"
    data_dir: Path = Path("./.tidings")
    database_url: str | None = None
    broker_url: str | None = None
    redis_url: str | None = None

    secret_key: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    jwt_private_key: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_refresh_seconds: float = Field(10.0, ge=0)

    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_from: str = "Tidings <no-reply@localhost>"
    smtp_pool_size: int = Field(4, ge=1, le=64)
    smtp_timeout_seconds: float = Field(30.0, gt=0)

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str = "https://api.twilio.com"

    vapid_private_key: SecretStr | None = None
    vapid_public_key: str | None = None
    vapid_subject: str | None = None

    # names of extra provider instances, each configured by TIDINGS_PROVIDER_<NAME>_*
    providers: str = ""

    public_url: str = "http://localhost:8000"
    allow_private_targets: bool = False
    unsubscribe_mailto: str | None = None

    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    max_bulk_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)

    delivery_max_attempts: int = Field(8, ge=1, le=100)
    retry_base_seconds: float = Field(2.0, gt=0)
    retry_max_seconds: float = Field(900.0, gt=0)
    claim_lease_seconds: int = Field(60, ge=1)
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    retention_days: int = Field(180, ge=1)

    ws_heartbeat_seconds: float = Field(25.0, gt=0)
    ws_max_lifetime_seconds: float = Field(3600.0, gt=0)
    ws_send_timeout_seconds: float = Field(10.0, gt=0)

    runner_concurrency: int = Field(16, ge=1, le=256)
    sweep_interval_seconds: float = Field(1.0, gt=0)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("providers")
    @classmethod
    def _providers(cls, value: str) -> str:
        names = [name.strip().lower() for name in value.split(",") if name.strip()]
        for name in names:
            if not _PROVIDER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a provider name (a-z, 0-9 and _, 1-32 long)")
        if len(set(names)) != len(names):
            raise ValueError("a provider is named twice")
        return ",".join(names)

    @field_validator("vapid_subject")
    @classmethod
    def _vapid_subject(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mailto:", "https://")):
            raise ValueError("must be a mailto: or https:// URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        allowed = ("sqlite+aiosqlite://", "postgresql+psycopg://", "postgresql+asyncpg://")
        if not value.startswith(allowed):
            raise ValueError("must start with one of " + ", ".join(allowed))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems: list[str] = []
        if self.smtp_starttls and self.smtp_tls and self.smtp_host:
            problems.append("TIDINGS_SMTP_STARTTLS and TIDINGS_SMTP_TLS cannot both be true")
        if self.twilio_account_sid:
            if self.twilio_auth_token is None:
                problems.append("TIDINGS_TWILIO_AUTH_TOKEN is required with an account SID")
            if bool(self.twilio_from) == bool(self.twilio_messaging_service_sid):
                problems.append(
                    "set exactly one of TIDINGS_TWILIO_FROM and "
                    "TIDINGS_TWILIO_MESSAGING_SERVICE_SID"
                )
        if bool(self.vapid_private_key) != bool(self.vapid_public_key):
            problems.append(
                "TIDINGS_VAPID_PRIVATE_KEY and TIDINGS_VAPID_PUBLIC_KEY go together (set both or "
                "neither, and Tidings generates a pair once)"
            )
        if self.env != "development":
            for name in ("secret_key", "jwt_secret", "smtp_password"):
                value = getattr(self, name)
                if value is not None and _is_weak(value.get_secret_value()):
                    problems.append(
                        f"TIDINGS_{name.upper()} is too weak: use at least {MIN_SECRET_BYTES} "
                        "random bytes"
                    )
        if not self.embedded:
            if self.secret_key is None:
                problems.append("TIDINGS_SECRET_KEY is required outside the embedded (SQLite) mode")
            if not (self.jwt_secret or self.jwt_public_key or self.jwt_jwks_url):
                problems.append(
                    "one of TIDINGS_JWT_SECRET, TIDINGS_JWT_PUBLIC_KEY or TIDINGS_JWT_JWKS_URL "
                    "is required outside the embedded (SQLite) mode"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tidings.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def embedded(self) -> bool:
        """Embedded mode: SQLite; secrets may be generated into the data directory."""
        return self.is_sqlite

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def provider_names(self) -> list[str]:
        """The extra provider instances named by ``TIDINGS_PROVIDERS``."""
        return [name for name in self.providers.split(",") if name]

    @property
    def push_subject(self) -> str:
        """The VAPID ``sub``: the configured one, else a contact derived from the service."""
        if self.vapid_subject:
            return self.vapid_subject
        if self.public_url.startswith("https://"):
            return self.public_url
        address = parseaddr(self.smtp_from)[1] or "no-reply@localhost"
        return f"mailto:{address}"

    def provider_options(
        self, name: str, environ: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """``TIDINGS_PROVIDER_<NAME>_<OPTION>`` values (from the environment, then ``.env``),
        keyed by lower-case option: the settings of one named provider instance."""
        prefix = f"TIDINGS_PROVIDER_{name.upper()}_"
        if environ is None:
            env_file = self.model_config.get("env_file")
            values: dict[str, str] = {}
            if isinstance(env_file, str) and Path(env_file).is_file():
                values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
            values.update(os.environ)
            environ = values
        return {
            key[len(prefix) :].lower(): value
            for key, value in environ.items()
            if key.upper().startswith(prefix) and value != ""
        }


def _is_weak(value: str) -> bool:
    return len(value.encode()) < MIN_SECRET_BYTES or value.strip().lower() in WEAK_SECRETS


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if loc:
            lines.append(f"TIDINGS_{loc.upper()}: {message}")
        else:  # cross-field checks name their variables themselves
            lines.extend(message.split("; "))
    return "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read and validate the configuration, raising ConfigError with a readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def stored_secret(settings: Settings, name: str, configured: SecretStr | None) -> str:
    """Return the configured secret, or one generated once and kept in the data directory."""
    if configured is not None:
        return configured.get_secret_value()
    if not settings.embedded:
        raise ConfigError(f"TIDINGS_{name.upper()} is required outside the embedded mode")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / f"{name}.secret"
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    # a private temporary file of our own, then link(): the first process to link wins,
    # and nobody ever sees a partly written or world-readable secret
    tmp = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()
