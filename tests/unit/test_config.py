"""Settings: SPEC section 7 defaults, refused secrets, cross-field checks, stored secrets."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tidings.config import (
    MIN_SECRET_BYTES,
    WEAK_SECRETS,
    ConfigError,
    Settings,
    load_settings,
    stored_secret,
)

STRONG = "0123456789abcdef-strong-enough-secret"
PG_URL = "postgresql+psycopg://tidings@db.example.test:5432/tidings"
SECRET_VARS = ["TIDINGS_SECRET_KEY", "TIDINGS_JWT_SECRET", "TIDINGS_SMTP_PASSWORD"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty working directory (no .env); tests that write files use their own tmp_path."""
    return tmp_path_factory.mktemp("cwd")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    """Keep a developer's TIDINGS_* variables and ./.env out of these tests."""
    for name in list(os.environ):
        if name.upper().startswith("TIDINGS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(workdir)


def config_error(**env: str) -> str:
    """Set the given TIDINGS_* variables, load, and return the ConfigError message."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        with pytest.raises(ConfigError) as info:
            load_settings()
    return str(info.value)


# --- defaults (SPEC section 7) ---------------------------------------------------------

DEFAULTS: dict[str, Any] = {
    "env": "production",
    "data_dir": Path(".tidings"),
    "database_url": None,
    "broker_url": None,
    "redis_url": None,
    "secret_key": None,
    "jwt_secret": None,
    "jwt_private_key": None,
    "jwt_public_key": None,
    "jwt_jwks_url": None,
    "jwt_issuer": None,
    "jwt_audience": None,
    "smtp_host": None,
    "smtp_port": 587,
    "smtp_starttls": True,
    "smtp_tls": False,
    "smtp_pool_size": 4,
    "public_url": "http://localhost:8000",
    "allow_private_targets": False,
    "unsubscribe_mailto": None,
    "max_body_bytes": 1024 * 1024,
    "max_bulk_body_bytes": 10 * 1024 * 1024,
    "delivery_max_attempts": 8,
    "retry_base_seconds": 2.0,
    "retry_max_seconds": 900.0,
    "claim_lease_seconds": 60,
    "webhook_timeout_seconds": 10.0,
    "retention_days": 180,
    "log_level": "INFO",
    "log_format": "json",
}


@pytest.mark.parametrize(("field", "expected"), list(DEFAULTS.items()))
def test_default_matches_spec(field: str, expected: object) -> None:
    assert getattr(load_settings(), field) == expected


def test_default_database_is_sqlite_in_the_data_dir() -> None:
    settings = load_settings()
    expected = (Path.cwd() / ".tidings" / "tidings.db").resolve()
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{expected}"
    assert settings.is_sqlite
    assert settings.embedded
    assert settings.mail_dir == Path(".tidings") / "mail"


def test_loading_settings_writes_nothing() -> None:
    load_settings()
    assert list(Path.cwd().iterdir()) == []


# --- reading variables -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("TIDINGS_ENV", "development", "env", "development"),
        ("TIDINGS_DATA_DIR", "/srv/tidings", "data_dir", Path("/srv/tidings")),
        ("TIDINGS_SMTP_HOST", "mail.example.test", "smtp_host", "mail.example.test"),
        ("TIDINGS_SMTP_PORT", "2525", "smtp_port", 2525),
        ("TIDINGS_SMTP_STARTTLS", "false", "smtp_starttls", False),
        ("TIDINGS_ALLOW_PRIVATE_TARGETS", "true", "allow_private_targets", True),
        ("TIDINGS_PUBLIC_URL", "https://n.example.test/", "public_url", "https://n.example.test"),
        ("TIDINGS_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("TIDINGS_LOG_FORMAT", "console", "log_format", "console"),
        ("TIDINGS_RETENTION_DAYS", "30", "retention_days", 30),
        (
            "TIDINGS_DATABASE_URL",
            "sqlite+aiosqlite:///x.db",
            "database_url",
            "sqlite+aiosqlite:///x.db",
        ),
    ],
)
def test_reads_tidings_variables(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


def test_reads_dotenv_in_working_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TIDINGS_SMTP_HOST=mail.example.test\nTIDINGS_SMTP_PORT=2525\n")
    settings = load_settings()
    assert (settings.smtp_host, settings.smtp_port) == ("mail.example.test", 2525)


def test_environment_wins_over_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TIDINGS_SMTP_PORT=2525\n")
    monkeypatch.setenv("TIDINGS_SMTP_PORT", "465")
    assert load_settings().smtp_port == 465


# --- bad values name their variable ----------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TIDINGS_ENV", "staging"),
        ("TIDINGS_SMTP_PORT", "0"),
        ("TIDINGS_SMTP_PORT", "70000"),
        ("TIDINGS_SMTP_PORT", "smtp"),
        ("TIDINGS_SMTP_POOL_SIZE", "0"),
        ("TIDINGS_PUBLIC_URL", "ftp://n.example.test"),
        ("TIDINGS_DATABASE_URL", "mysql://db.example.test/tidings"),
        ("TIDINGS_DATABASE_URL", "postgresql://db.example.test/tidings"),
        ("TIDINGS_LOG_LEVEL", "verbose"),
        ("TIDINGS_LOG_FORMAT", "xml"),
        ("TIDINGS_MAX_BODY_BYTES", "10"),
        ("TIDINGS_DELIVERY_MAX_ATTEMPTS", "0"),
        ("TIDINGS_RETRY_BASE_SECONDS", "0"),
        ("TIDINGS_RETENTION_DAYS", "0"),
        ("TIDINGS_ALLOW_PRIVATE_TARGETS", "perhaps"),
    ],
)
def test_bad_value_is_a_config_error_naming_the_variable(variable: str, value: str) -> None:
    message = config_error(**{variable: value})
    assert f"{variable}:" in message


def test_every_bad_variable_is_named_in_one_message() -> None:
    message = config_error(
        TIDINGS_SMTP_PORT="0", TIDINGS_LOG_LEVEL="loud", TIDINGS_PUBLIC_URL="n.example.test"
    )
    for variable in ("TIDINGS_SMTP_PORT", "TIDINGS_LOG_LEVEL", "TIDINGS_PUBLIC_URL"):
        assert variable in message
    assert len(message.splitlines()) == 3


# --- secrets ---------------------------------------------------------------------------

WEAK_VALUES = [
    *sorted(WEAK_SECRETS),
    *(word.upper() for word in sorted(WEAK_SECRETS)),
    "ChangeMe",
    "Your-Secret-Key",
    "x" * (MIN_SECRET_BYTES - 1),
    "é" * 15,  # 15 characters, 30 bytes
]


@pytest.mark.parametrize("value", WEAK_VALUES)
@pytest.mark.parametrize("variable", SECRET_VARS)
def test_weak_secret_is_refused_outside_development(variable: str, value: str) -> None:
    message = config_error(**{variable: value})
    assert f"{variable} is too weak" in message
    for other in set(SECRET_VARS) - {variable}:
        assert other not in message


@pytest.mark.parametrize("variable", SECRET_VARS)
def test_weak_secrets_are_accepted_in_development(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("TIDINGS_ENV", "development")
    field = variable.removeprefix("TIDINGS_").lower()
    for value in WEAK_VALUES:
        monkeypatch.setenv(variable, value)
        assert getattr(load_settings(), field).get_secret_value() == value


@pytest.mark.parametrize(
    "value",
    [
        "x" * MIN_SECRET_BYTES,
        "é" * 16,  # counted in bytes: 16 characters, 32 bytes
        STRONG,
        "changeme-" + "k" * 32,  # a weak word only counts as the whole value
    ],
)
@pytest.mark.parametrize("variable", SECRET_VARS)
def test_long_enough_secret_is_accepted_in_production(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    field = variable.removeprefix("TIDINGS_").lower()
    settings = load_settings()
    assert settings.env == "production"
    assert getattr(settings, field).get_secret_value() == value


def test_refusal_does_not_echo_the_secret() -> None:
    message = config_error(TIDINGS_JWT_SECRET="hunter2-hunter2")
    assert "hunter2" not in message


def test_secrets_are_not_shown_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_SECRET_KEY", STRONG)
    assert STRONG not in repr(load_settings())


# --- SMTP TLS --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "starttls", "tls", "ok"),
    [
        ("mail.example.test", "true", "true", False),
        ("mail.example.test", "true", "false", True),
        ("mail.example.test", "false", "true", True),
        ("mail.example.test", "false", "false", True),
        (None, "true", "true", True),  # no host: mail goes to files, TLS flags are moot
    ],
)
def test_starttls_and_tls_together_are_refused_with_a_host(
    monkeypatch: pytest.MonkeyPatch, host: str | None, starttls: str, tls: str, ok: bool
) -> None:
    if host is not None:
        monkeypatch.setenv("TIDINGS_SMTP_HOST", host)
    monkeypatch.setenv("TIDINGS_SMTP_STARTTLS", starttls)
    monkeypatch.setenv("TIDINGS_SMTP_TLS", tls)
    if ok:
        load_settings()
        return
    message = config_error()
    assert "TIDINGS_SMTP_STARTTLS" in message
    assert "TIDINGS_SMTP_TLS" in message


# --- PostgreSQL needs configured secrets -----------------------------------------------


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"TIDINGS_JWT_SECRET": STRONG}, ["TIDINGS_SECRET_KEY"]),
        ({"TIDINGS_SECRET_KEY": STRONG}, ["TIDINGS_JWT_SECRET"]),
        ({}, ["TIDINGS_SECRET_KEY", "TIDINGS_JWT_SECRET"]),
        ({"TIDINGS_ENV": "development"}, ["TIDINGS_SECRET_KEY", "TIDINGS_JWT_SECRET"]),
    ],
)
def test_postgresql_without_secrets_names_the_variable(
    env: dict[str, str], missing: list[str]
) -> None:
    message = config_error(TIDINGS_DATABASE_URL=PG_URL, **env)
    for variable in missing:
        assert variable in message
    assert len(message.splitlines()) == len(missing)


@pytest.mark.parametrize(
    "jwt_env",
    [
        {"TIDINGS_JWT_SECRET": STRONG},
        {"TIDINGS_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\\n...\\n-----END PUBLIC KEY-----"},
        {"TIDINGS_JWT_JWKS_URL": "https://idp.example.test/.well-known/jwks.json"},
    ],
)
@pytest.mark.parametrize("url", [PG_URL, "postgresql+asyncpg://db.example.test/tidings"])
def test_postgresql_with_secrets_is_accepted(
    monkeypatch: pytest.MonkeyPatch, url: str, jwt_env: dict[str, str]
) -> None:
    monkeypatch.setenv("TIDINGS_DATABASE_URL", url)
    monkeypatch.setenv("TIDINGS_SECRET_KEY", STRONG)
    for name, value in jwt_env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.resolved_database_url == url
    assert not settings.is_sqlite
    assert not settings.embedded


def test_cross_field_problems_are_all_reported_together() -> None:
    message = config_error(
        TIDINGS_DATABASE_URL=PG_URL,
        TIDINGS_JWT_SECRET="changeme",
        TIDINGS_SMTP_HOST="mail.example.test",
        TIDINGS_SMTP_TLS="true",
    )
    for variable in ("TIDINGS_JWT_SECRET", "TIDINGS_SMTP_TLS", "TIDINGS_SECRET_KEY"):
        assert variable in message
    assert len(message.splitlines()) == 3


# --- stored secrets --------------------------------------------------------------------


def embedded(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


def test_configured_secret_is_returned_and_nothing_is_written(tmp_path: Path) -> None:
    settings = embedded(tmp_path)
    assert stored_secret(settings, "secret_key", SecretStr(STRONG)) == STRONG
    assert not (tmp_path / "data").exists()


def test_generated_secret_is_strong_and_kept_private(tmp_path: Path) -> None:
    settings = embedded(tmp_path)
    value = stored_secret(settings, "secret_key", None)
    path = tmp_path / "data" / "secret_key.secret"
    assert len(value.encode()) >= MIN_SECRET_BYTES
    assert path.read_text().strip() == value
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key.secret"]
    # a generated secret passes the production check
    load_settings(data_dir=tmp_path / "data", secret_key=value, jwt_secret=value)


def test_generated_secret_is_stable_across_calls_and_restarts(tmp_path: Path) -> None:
    first = stored_secret(embedded(tmp_path), "jwt_secret", None)
    assert stored_secret(embedded(tmp_path), "jwt_secret", None) == first
    assert stored_secret(embedded(tmp_path), "jwt_secret", None) == first


def test_each_name_gets_its_own_secret(tmp_path: Path) -> None:
    settings = embedded(tmp_path)
    assert stored_secret(settings, "jwt_secret", None) != stored_secret(
        settings, "secret_key", None
    )


def test_nested_data_dir_is_created(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "a" / "b")
    stored_secret(settings, "secret_key", None)
    assert (tmp_path / "a" / "b" / "secret_key.secret").is_file()


def test_no_secret_is_generated_outside_embedded_mode(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, database_url=PG_URL, secret_key=STRONG, jwt_secret=STRONG
    )
    with pytest.raises(ConfigError, match="TIDINGS_VAPID_PRIVATE_KEY"):
        stored_secret(settings, "vapid_private_key", None)
    assert list(tmp_path.iterdir()) == []


def test_leftover_temp_file_does_not_widen_permissions(tmp_path: Path) -> None:
    settings = embedded(tmp_path)
    settings.data_dir.mkdir()
    leftover = settings.data_dir / "jwt_secret.tmp"  # from a process that died mid-write
    leftover.write_text("half-written")
    leftover.chmod(0o644)
    value = stored_secret(settings, "jwt_secret", None)
    path = settings.data_dir / "jwt_secret.secret"
    assert path.read_text().strip() == value
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
