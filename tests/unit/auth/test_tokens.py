"""Bearer tokens: HS256 and RS256 verification per SPEC "Authentication and roles", and signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tidings.auth.principal import Principal
from tidings.auth.tokens import (
    LEEWAY_SECONDS,
    VERIFIED_CACHE_SECONDS,
    TokenVerifier,
    issue_token,
)
from tidings.config import ConfigError, Settings, load_settings
from tidings.errors import Unauthorized

SECRET = "unit-test-jwt-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
OTHER_SECRET = "another-jwt-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
PG_URL = "postgresql+psycopg://tidings@db.example.test/tidings"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Working and data directory for settings that write nothing (a secret is configured)."""
    return tmp_path_factory.mktemp("tokens")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    """Keep a developer's TIDINGS_* variables and ./.env out of these tests."""
    for name in list(os.environ):
        if name.upper().startswith("TIDINGS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(workdir)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"jwt_secret": SECRET, **overrides}
    return load_settings(env="development", data_dir=data_dir, **values)


def claims(**changes: Any) -> dict[str, Any]:
    """Good claims; a value of ... removes the claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-1",
        "tenant": "acme",
        "roles": ["service"],
        "iat": now,
        "exp": now + 600,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def hs256(payload: dict[str, Any], key: str = SECRET, **kwargs: Any) -> str:
    return jwt.encode(payload, key, algorithm="HS256", **kwargs)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned(payload: dict[str, Any], alg: str = "none") -> str:
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(payload).encode())}."


async def refused(verifier: TokenVerifier, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        await verifier.verify(token)
    assert info.value.status == 401
    assert info.value.headers["WWW-Authenticate"] == "Bearer"
    return info.value


@pytest.fixture
def verifier(workdir: Path) -> TokenVerifier:
    return TokenVerifier(make_settings(workdir))


# --- HS256 -----------------------------------------------------------------------------


async def test_valid_token_gives_the_principal(verifier: TokenVerifier) -> None:
    principal = await verifier.verify(hs256(claims(roles=["service", "admin"])))
    assert principal == Principal(
        tenant="acme", sub="user-1", roles=frozenset({"service", "admin"})
    )
    assert principal.is_admin
    assert principal.is_service


async def test_roles_default_to_empty(verifier: TokenVerifier) -> None:
    principal = await verifier.verify(hs256(claims(roles=...)))
    assert principal.roles == frozenset()
    assert not principal.is_service


@pytest.mark.parametrize("sub", ["user-1", "a", "u:1@example.test", "x" * 128, "A.b_c-d:e@f"])
async def test_recipient_id_shaped_subjects_pass(verifier: TokenVerifier, sub: str) -> None:
    assert (await verifier.verify(hs256(claims(sub=sub)))).sub == sub


@pytest.mark.parametrize("seconds_ago", [1, LEEWAY_SECONDS - 5])
async def test_expired_within_leeway_is_accepted(verifier: TokenVerifier, seconds_ago: int) -> None:
    token = hs256(claims(exp=int(time.time()) - seconds_ago))
    assert (await verifier.verify(token)).tenant == "acme"


async def test_not_before_within_leeway_is_accepted(verifier: TokenVerifier) -> None:
    token = hs256(claims(nbf=int(time.time()) + LEEWAY_SECONDS - 5))
    assert (await verifier.verify(token)).tenant == "acme"


NOW = int(time.time())

BAD_CLAIMS: dict[str, dict[str, Any]] = {
    "expired beyond leeway": claims(exp=NOW - LEEWAY_SECONDS - 30),
    "expired long ago": claims(exp=NOW - 86_400, iat=NOW - 90_000),
    "not yet valid": claims(nbf=NOW + LEEWAY_SECONDS + 3600),
    "issued in the future": claims(iat=NOW + 3600),
    "no sub": claims(sub=...),
    "no tenant": claims(tenant=...),
    "no exp": claims(exp=...),
    "exp is a word": claims(exp="tomorrow"),
    "exp is null": claims(exp=None),
    "roles is a string": claims(roles="admin"),
    "roles is an object": claims(roles={"admin": True}),
    "roles holds a number": claims(roles=[1]),
    "role with capitals": claims(roles=["Admin"]),
    "role with a space": claims(roles=["ad min"]),
    "tenant with a space": claims(tenant="acme corp"),
    "tenant with a slash": claims(tenant="acme/other"),
    "tenant with a colon": claims(tenant="acme:x"),
    "tenant empty": claims(tenant=""),
    "tenant too long": claims(tenant="t" * 65),
    "tenant is a number": claims(tenant=7),
    "tenant is a list": claims(tenant=["acme"]),
    "sub with a space": claims(sub="user 1"),
    "sub too long": claims(sub="u" * 129),
    "sub is a number": claims(sub=7),
}


@pytest.mark.parametrize("case", list(BAD_CLAIMS))
async def test_bad_claims_are_unauthorized(verifier: TokenVerifier, case: str) -> None:
    await refused(verifier, hs256(BAD_CLAIMS[case]))


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        pytest.param("tenant", "acme\n", id="tenant with a trailing newline"),
        pytest.param("sub", "user-1\n", id="sub with a trailing newline"),
    ],
)
async def test_trailing_newline_in_ids_is_unauthorized(
    verifier: TokenVerifier, claim: str, value: str
) -> None:
    await refused(verifier, hs256(claims(**{claim: value})))


async def test_exp_as_numeric_string_is_unauthorized(verifier: TokenVerifier) -> None:
    await refused(verifier, hs256(claims(exp=str(int(time.time()) + 600))))


async def test_missing_claim_is_named(verifier: TokenVerifier) -> None:
    error = await refused(verifier, hs256(claims(tenant=...)))
    assert "tenant" in error.detail


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(unsigned(claims()), id="alg none"),
        pytest.param(unsigned(claims(), alg="None"), id="alg None"),
        pytest.param(hs256(claims())[: hs256(claims()).rindex(".") + 1], id="signature dropped"),
        pytest.param(hs256(claims(), OTHER_SECRET), id="wrong secret"),
        pytest.param(jwt.encode(claims(), SECRET, algorithm="HS512"), id="HS512 with the secret"),
        pytest.param("", id="empty"),
        pytest.param("not-a-jwt", id="garbage"),
        pytest.param("a.b.c", id="three garbage parts"),
        pytest.param("Bearer " + hs256(claims()), id="scheme left in"),
    ],
)
async def test_forged_or_garbage_tokens_are_unauthorized(
    verifier: TokenVerifier, token: str
) -> None:
    await refused(verifier, token)


async def test_tampered_payload_is_unauthorized(verifier: TokenVerifier) -> None:
    header, _, signature = hs256(claims()).split(".")
    payload = b64(json.dumps(claims(tenant="globex")).encode())
    await refused(verifier, f"{header}.{payload}.{signature}")


# --- issuer and audience ---------------------------------------------------------------

ISS = "https://idp.example.test/"
AUD = "tidings"


@pytest.mark.parametrize(
    ("configured", "token_claims", "ok"),
    [
        ({"jwt_issuer": ISS}, {"iss": ISS}, True),
        ({"jwt_issuer": ISS}, {"iss": "https://evil.example.test/"}, False),
        ({"jwt_issuer": ISS}, {}, False),
        ({"jwt_audience": AUD}, {"aud": AUD}, True),
        ({"jwt_audience": AUD}, {"aud": ["other", AUD]}, True),
        ({"jwt_audience": AUD}, {"aud": "other"}, False),
        ({"jwt_audience": AUD}, {}, False),
        ({"jwt_issuer": ISS, "jwt_audience": AUD}, {"iss": ISS, "aud": AUD}, True),
        ({"jwt_issuer": ISS, "jwt_audience": AUD}, {"iss": ISS, "aud": "other"}, False),
        ({}, {"iss": "anyone", "aud": "anything"}, True),  # not configured: not checked
    ],
)
async def test_issuer_and_audience_are_checked_when_configured(
    workdir: Path, configured: dict[str, str], token_claims: dict[str, Any], ok: bool
) -> None:
    verifier = TokenVerifier(make_settings(workdir, **configured))
    token = hs256(claims(**token_claims))
    if ok:
        assert (await verifier.verify(token)).sub == "user-1"
    else:
        await refused(verifier, token)


# --- issue_token -----------------------------------------------------------------------


async def test_issued_token_verifies(workdir: Path) -> None:
    settings = make_settings(workdir, jwt_issuer=ISS, jwt_audience=AUD)
    token = issue_token(settings, tenant="acme", sub="user-1", roles=["admin"], ttl_seconds=60)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    payload = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUD, issuer=ISS)
    assert payload["exp"] - payload["iat"] == 60
    principal = await TokenVerifier(settings).verify(token)
    assert principal == Principal(tenant="acme", sub="user-1", roles=frozenset({"admin"}))


async def test_issued_token_expires(workdir: Path) -> None:
    settings = make_settings(workdir)
    token = issue_token(settings, tenant="acme", sub="u", roles=[], ttl_seconds=-120)
    await refused(TokenVerifier(settings), token)


async def test_embedded_mode_signs_and_verifies_with_a_generated_secret(tmp_path: Path) -> None:
    settings = load_settings(env="development", data_dir=tmp_path)
    token = issue_token(settings, tenant="acme", sub="u", roles=["service"], ttl_seconds=60)
    assert (await TokenVerifier(settings).verify(token)).tenant == "acme"
    stored = (tmp_path / "jwt_secret.secret").read_text().strip()
    assert jwt.decode(token, stored, algorithms=["HS256"])["sub"] == "u"


@pytest.mark.parametrize(
    ("tenant", "sub"), [("acme corp", "u"), ("", "u"), ("acme", "user 1"), ("acme", "")]
)
def test_issue_token_refuses_bad_ids(workdir: Path, tenant: str, sub: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        issue_token(make_settings(workdir), tenant=tenant, sub=sub, roles=[], ttl_seconds=60)


# --- RS256 -----------------------------------------------------------------------------


def pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    return pem_pair()


@pytest.fixture(scope="module")
def other_rsa_keys() -> tuple[str, str]:
    return pem_pair()


def rs_settings(data_dir: Path, private: str | None, public: str, **more: Any) -> Settings:
    return load_settings(
        env="development",
        data_dir=data_dir,
        jwt_private_key=private,
        jwt_public_key=public,
        **more,
    )


async def test_rs256_round_trip(workdir: Path, rsa_keys: tuple[str, str]) -> None:
    private, public = rsa_keys
    settings = rs_settings(workdir, private, public)
    token = issue_token(settings, tenant="acme", sub="user-1", roles=["admin"], ttl_seconds=60)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert (await TokenVerifier(settings).verify(token)).is_admin


async def test_rs256_keys_given_on_one_line(workdir: Path, rsa_keys: tuple[str, str]) -> None:
    private, public = (pem.replace("\n", "\\n") for pem in rsa_keys)
    settings = rs_settings(workdir, private, public)
    token = issue_token(settings, tenant="acme", sub="u", roles=[], ttl_seconds=60)
    assert (await TokenVerifier(settings).verify(token)).sub == "u"


async def test_rs256_token_from_another_key_is_unauthorized(
    workdir: Path, rsa_keys: tuple[str, str], other_rsa_keys: tuple[str, str]
) -> None:
    verifier = TokenVerifier(rs_settings(workdir, None, rsa_keys[1]))
    forged = jwt.encode(claims(), other_rsa_keys[0], algorithm="RS256")
    await refused(verifier, forged)


async def test_rs256_checks_claims_too(workdir: Path, rsa_keys: tuple[str, str]) -> None:
    verifier = TokenVerifier(rs_settings(workdir, None, rsa_keys[1]))
    expired = jwt.encode(claims(exp=int(time.time()) - 120), rsa_keys[0], algorithm="RS256")
    await refused(verifier, expired)


async def test_hs256_signed_with_the_public_key_is_unauthorized(
    workdir: Path, rsa_keys: tuple[str, str]
) -> None:
    """The classic algorithm confusion: the public key used as an HMAC secret."""
    public = rsa_keys[1]
    verifier = TokenVerifier(rs_settings(workdir, None, public))
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    mac = hmac.new(public.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    await refused(verifier, f"{header}.{payload}.{b64(mac)}")
    await refused(verifier, unsigned(claims()))


@pytest.mark.parametrize("database_url", [None, PG_URL])
def test_issue_token_with_only_a_public_key_is_a_config_error(
    tmp_path: Path, rsa_keys: tuple[str, str], database_url: str | None
) -> None:
    more = {"database_url": database_url, "secret_key": SECRET} if database_url else {}
    settings = rs_settings(tmp_path, None, rsa_keys[1], **more)
    with pytest.raises(ConfigError, match="TIDINGS_JWT_PRIVATE_KEY"):
        issue_token(settings, tenant="acme", sub="u", roles=[], ttl_seconds=60)
    assert not (tmp_path / "jwt_secret.secret").exists()


def test_issue_token_with_only_a_jwks_url_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings(
        env="development",
        data_dir=tmp_path,
        jwt_jwks_url="https://idp.example.test/.well-known/jwks.json",
    )
    with pytest.raises(ConfigError, match="TIDINGS_JWT_PRIVATE_KEY"):
        issue_token(settings, tenant="acme", sub="u", roles=[], ttl_seconds=60)


# --- verified tokens are remembered ----------------------------------------------------


async def test_a_verified_token_is_checked_once_while_it_is_remembered(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = hs256(claims())
    first = await verifier.verify(token)
    decoded: list[str] = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decoded.append("decode") or {})
    assert await verifier.verify(token) == first
    assert decoded == []


async def test_a_remembered_token_is_refused_once_it_expires(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    token = hs256(claims(exp=int(now) + 60))
    await verifier.verify(token)
    # past exp and the leeway the token is verified again, and PyJWT (whose clock this
    # test cannot move) would say it expired
    monkeypatch.setattr(time, "time", lambda: now + 60 + LEEWAY_SECONDS + 1)

    def expired(*_args: Any, **_kwargs: Any) -> Any:
        raise jwt.ExpiredSignatureError("Signature has expired")

    monkeypatch.setattr(jwt, "decode", expired)
    assert "expired" in (await refused(verifier, token)).detail


async def test_a_remembered_token_is_checked_again_after_the_cache_period(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    token = hs256(claims(exp=int(now) + 3600))
    await verifier.verify(token)
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting(*args: Any, **kwargs: Any) -> Any:
        decoded.append("decode")
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    monkeypatch.setattr(time, "time", lambda: now + VERIFIED_CACHE_SECONDS + 1)
    await verifier.verify(token)
    assert decoded == ["decode"]


async def test_refused_tokens_are_not_remembered(verifier: TokenVerifier) -> None:
    token = hs256(claims(tenant="bad tenant!"))
    for _ in range(2):
        await refused(verifier, token)
