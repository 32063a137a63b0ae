"""Request dependencies: who is calling, and may they?"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="A JWT with sub, tenant, exp and roles")


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required")
    ctx: AppContext = request.app.state.ctx
    principal = await ctx.verifier.verify(credentials.credentials)
    request.state.principal = principal
    return principal


async def require_service(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_service:
        raise Forbidden("this operation needs the service or admin role")
    return principal


async def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this operation needs the admin role")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
ServicePrincipal = Annotated[Principal, Depends(require_service)]
AdminPrincipal = Annotated[Principal, Depends(require_admin)]
