"""The `tidings` command: tokens, migrations, template seeding, configuration errors."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from tidings.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import os

    for name in list(os.environ):
        if name.startswith("TIDINGS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIDINGS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_token_in_embedded_mode_uses_the_generated_secret(clean_env: Path) -> None:
    result = runner.invoke(
        app,
        [
            "token",
            "--tenant",
            "acme",
            "--sub",
            "ats",
            "--role",
            "service",
            "--role",
            "admin",
            "--ttl",
            "60",
        ],
    )
    assert result.exit_code == 0, result.output
    secret = (clean_env / "data" / "jwt_secret.secret").read_text().strip()
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])
    assert (claims["tenant"], claims["sub"], claims["roles"]) == (
        "acme",
        "ats",
        ["service", "admin"],
    )
    assert claims["exp"] - claims["iat"] == 60


def test_token_with_rs256_private_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    monkeypatch.setenv("TIDINGS_JWT_PRIVATE_KEY", pem)
    result = runner.invoke(app, ["token", "--tenant", "acme", "--sub", "u1"])
    assert result.exit_code == 0, result.output
    public = key.public_key()
    assert jwt.decode(result.stdout.strip(), public, algorithms=["RS256"])["sub"] == "u1"


def test_token_with_only_a_public_key_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    monkeypatch.setenv("TIDINGS_JWT_PUBLIC_KEY", pem)
    result = runner.invoke(app, ["token", "--tenant", "acme", "--sub", "u1"])
    assert result.exit_code == 2
    assert "public key" in result.output


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TIDINGS_SMTP_PORT": "abc"}, "TIDINGS_SMTP_PORT"),
        ({"TIDINGS_LOG_FORMAT": "xml"}, "TIDINGS_LOG_FORMAT"),
        ({"TIDINGS_SMTP_HOST": "mail", "TIDINGS_SMTP_TLS": "true"}, "TIDINGS_SMTP_STARTTLS"),
        ({"TIDINGS_JWT_SECRET": "changeme"}, "TIDINGS_JWT_SECRET is too weak"),
        ({"TIDINGS_DATABASE_URL": "postgresql+psycopg://u@h/db"}, "TIDINGS_SECRET_KEY"),
        ({"TIDINGS_DATABASE_URL": "mysql://u@h/db"}, "TIDINGS_DATABASE_URL"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["token", "--tenant", "acme", "--sub", "u"])
    assert result.exit_code == 2
    assert expected in result.output


def test_bad_token_arguments_exit_2() -> None:
    result = runner.invoke(app, ["token", "--tenant", "bad tenant!", "--sub", "u"])
    assert result.exit_code == 2
    assert "tenant" in result.output


def test_migrate_and_seed_templates_on_sqlite(clean_env: Path) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    assert (clean_env / "data" / "tidings.db").exists()
    seeded = runner.invoke(app, ["templates", "seed", "--tenant", "acme"])
    assert seeded.exit_code == 0, seeded.output
    assert "seeded 18 templates" in seeded.stdout
    listed = runner.invoke(app, ["templates", "list", "--tenant", "acme"])
    assert listed.exit_code == 0
    assert "interview_scheduled" in listed.stdout and len(listed.stdout.splitlines()) == 18
    builtin = runner.invoke(app, ["templates", "list"])
    assert "digest" in builtin.stdout


def test_help_texts() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "migrate", "token", "templates"):
        assert command in result.stdout


@pytest.mark.postgresql
def test_serve_refuses_an_unmigrated_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from tests.conftest import TEST_DATABASE_URL, _admin, need_service, run_async

    name = f"tidings_unmigrated_{uuid.uuid4().hex[:8]}"
    try:
        run_async(lambda: _admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        need_service("PostgreSQL", str(exc))
    try:
        base = TEST_DATABASE_URL.rpartition("/")[0]
        monkeypatch.setenv("TIDINGS_DATABASE_URL", f"{base}/{name}")
        monkeypatch.setenv("TIDINGS_SECRET_KEY", "k" * 40)
        monkeypatch.setenv("TIDINGS_JWT_SECRET", "j" * 40)
        result = runner.invoke(app, ["serve", "--port", "1"])
        assert result.exit_code == 1
        assert "tidings migrate" in result.output
        assert runner.invoke(app, ["migrate"]).exit_code == 0
        result = runner.invoke(app, ["serve", "--workers", "2"])
        assert result.exit_code == 2 and "TIDINGS_REDIS_URL" in result.output
    finally:
        run_async(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_send_literal_and_template_and_follow(clean_env: Path) -> None:
    import json

    result = runner.invoke(
        app,
        [
            "send",
            "--tenant",
            "acme",
            "--to",
            "a",
            "--to",
            "b",
            "--title",
            "Hello",
            "--body",
            "World",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"status": "completed"' in result.stdout  # in-app only: done at once
    assert '"in_app": {\n      "delivered": 2' in result.stdout
    _put_recipient("a", {"email": "a@example.test"})
    data_file = clean_env / "data.json"
    data_file.write_text(json.dumps({"alert_title": "Maintenance"}))
    result = runner.invoke(
        app,
        [
            "send",
            "--tenant",
            "acme",
            "--to",
            "a",
            "--template",
            "system_alert",
            "--data-file",
            str(data_file),
            "--data",
            "alert_message=Tonight at 22:00",
            "--channel",
            "email",
            "--follow",
            "--timeout",
            "0.2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "still in progress" in result.output  # nobody delivers e-mail in this test
    result = runner.invoke(
        app,
        ["send", "--tenant", "acme", "--topic", "t", "--title", "x", "--body", "y", "--no-follow"],
    )
    assert result.exit_code == 0 and '"notifications": null' in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--to", "a"], "title"),
        (["--to", "a", "--template", "nope"], "does not exist"),
        (["--to", "a", "--title", "t", "--body", "b", "--data", "novalue"], "key=value"),
        (["--title", "t", "--body", "b"], "recipients"),
        (["--to", "a", "--template", "system_alert"], "alert_message"),
    ],
)
def test_send_refuses_bad_input(args: list[str], expected: str) -> None:
    result = runner.invoke(app, ["send", "--tenant", "acme", "--no-follow", *args])
    assert result.exit_code == 2
    assert expected in result.output


def _put_recipient(recipient_id: str, body: dict[str, str]) -> None:
    """Create a recipient through the API of an app on the CLI's configuration."""
    from tests.conftest import run_async, running
    from tidings.auth.tokens import issue_token
    from tidings.config import load_settings

    settings = load_settings()
    token = issue_token(settings, tenant="acme", sub="ats", roles=["service"], ttl_seconds=60)

    async def put() -> None:
        async with running(settings, run_deliveries=False) as svc:
            r = await svc.client.put(
                f"/v1/recipients/{recipient_id}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code in (200, 201), r.text

    run_async(put)
