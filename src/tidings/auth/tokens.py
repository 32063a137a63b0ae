"""JWT verification (HS256 or RS256) and, for operators, signing."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import jwt

from tidings.auth.jwks import JWKSKeys
from tidings.auth.principal import Principal
from tidings.config import ConfigError, Settings, stored_secret
from tidings.errors import Unauthorized
from tidings.kit.types import RECIPIENT_ID_PATTERN, TENANT_ID_PATTERN

LEEWAY_SECONDS = 30
# A verified token is remembered for at most this long (and never past its exp), so a
# client's next requests skip the signature check; a key withdrawn from the JWKS stops
# being honoured within this time.
VERIFIED_CACHE_SECONDS = 300
VERIFIED_CACHE_SIZE = 4096
_TENANT = re.compile(TENANT_ID_PATTERN)
_SUB = re.compile(RECIPIENT_ID_PATTERN)
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class TokenVerifier:
    """Checks bearer tokens against the configured key (or JWKS) and claims."""

    def __init__(self, settings: Settings, *, http: httpx.AsyncClient | None = None) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._key: Any = None
        self._jwks: JWKSKeys | None = None
        self._verified: dict[str, tuple[Principal, float]] = {}
        if settings.jwt_jwks_url:
            if http is None:
                raise ConfigError("verifying with a JWKS URL needs an HTTP client")
            self._algorithms = ["RS256"]
            self._jwks = JWKSKeys(
                settings.jwt_jwks_url,
                http,
                min_refresh_interval=settings.jwt_jwks_refresh_seconds,
            )
        elif settings.jwt_public_key:
            self._algorithms = ["RS256"]
            self._key = settings.jwt_public_key.replace("\\n", "\n")
        elif settings.jwt_secret is not None or settings.embedded:
            self._algorithms = ["HS256"]
            self._key = stored_secret(settings, "jwt_secret", settings.jwt_secret)
        else:
            raise ConfigError("no JWT verification key configured")

    async def verify(self, token: str) -> Principal:
        now = time.time()
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, until = remembered
            if now < until:
                return principal
            del self._verified[token]
        claims = await self._claims(token)
        principal = _principal(claims)
        until = min(float(claims["exp"]) + LEEWAY_SECONDS, now + VERIFIED_CACHE_SECONDS)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = (principal, until)
        return principal

    async def _claims(self, token: str) -> dict[str, Any]:
        key = self._key
        if self._jwks is not None:
            try:
                header = jwt.get_unverified_header(token)
            except jwt.InvalidTokenError:
                raise Unauthorized("token is invalid") from None
            if header.get("alg") != "RS256":
                raise Unauthorized("token is invalid")
            kid = header.get("kid")
            key = await self._jwks.key_for(kid if isinstance(kid, str) else None)
        options: Any = {"require": ["sub", "tenant", "exp"], "verify_aud": bool(self._audience)}
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                leeway=LEEWAY_SECONDS,
                issuer=self._issuer,
                audience=self._audience,
                options=options,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("token is not yet valid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("token is invalid") from None
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise Unauthorized(f"token's {name} claim must be a number")
        return claims


def _principal(claims: dict[str, Any]) -> Principal:
    tenant, sub, roles = claims.get("tenant"), claims.get("sub"), claims.get("roles", [])
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise Unauthorized("token's tenant claim is not a valid tenant id")
    if not isinstance(sub, str) or not _SUB.fullmatch(sub):
        raise Unauthorized("token's sub claim is not a valid recipient id")
    if not isinstance(roles, list) or not all(
        isinstance(r, str) and _ROLE.fullmatch(r) for r in roles
    ):
        raise Unauthorized("token's roles claim must be a list of role names")
    return Principal(tenant=tenant, sub=sub, roles=frozenset(roles))


def issue_token(
    settings: Settings, *, tenant: str, sub: str, roles: list[str], ttl_seconds: int
) -> str:
    """Sign a token with the configured secret or private key (for operators and tests)."""
    if not _TENANT.fullmatch(tenant):
        raise ValueError(f"tenant {tenant!r} must match {TENANT_ID_PATTERN}")
    if not _SUB.fullmatch(sub):
        raise ValueError(f"sub {sub!r} must match {RECIPIENT_ID_PATTERN}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "tenant": tenant,
        "roles": roles,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_private_key is not None:
        key = settings.jwt_private_key.get_secret_value().replace("\\n", "\n")
        return jwt.encode(claims, key, algorithm="RS256")
    verify_only = settings.jwt_public_key or settings.jwt_jwks_url
    if settings.jwt_secret is not None or (settings.embedded and not verify_only):
        secret = stored_secret(settings, "jwt_secret", settings.jwt_secret)
        return jwt.encode(claims, secret, algorithm="HS256")
    raise ConfigError(
        "cannot sign tokens: set TIDINGS_JWT_SECRET (HS256) or TIDINGS_JWT_PRIVATE_KEY (RS256); "
        "a public key or JWKS URL can only verify"
    )
