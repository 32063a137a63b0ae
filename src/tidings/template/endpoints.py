from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from tidings.auth.deps import AdminPrincipal, ServicePrincipal
from tidings.deps import Ctx, WriteSession
from tidings.kit.paging import DEFAULT_LIMIT, MAX_LIMIT
from tidings.kit.types import TEMPLATE_KEY_PATTERN
from tidings.ops.responses import errors
from tidings.template import service
from tidings.template.schemas import (
    PreviewRead,
    PreviewRequest,
    TemplateCreate,
    TemplatePage,
    TemplatePatch,
    TemplateRead,
    TemplateReplace,
)

router = APIRouter(prefix="/templates", tags=["templates"])

KeyPath = Annotated[str, Path(pattern=TEMPLATE_KEY_PATTERN, max_length=100)]


# Reads seed the tenant's defaults on first use, so they run in a write transaction.
@router.get("", response_model=TemplatePage, responses=errors(400, 401, 403, 422))
async def list_templates(
    principal: ServicePrincipal,
    session: WriteSession,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> TemplatePage:
    """List the tenant's templates, newest first."""
    return await service.list_page(session, ctx, principal, limit=limit, cursor=cursor)


@router.post(
    "",
    response_model=TemplateRead,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 409, 413, 422),
)
async def create_template(
    payload: TemplateCreate, principal: AdminPrincipal, session: WriteSession, ctx: Ctx
) -> TemplateRead:
    """Create a template; every content field is parsed (a syntax error is a 422)."""
    return await service.create(session, ctx, principal, payload)


@router.get("/{key}", response_model=TemplateRead, responses=errors(401, 403, 404, 422))
async def get_template(
    key: KeyPath, principal: ServicePrincipal, session: WriteSession, ctx: Ctx
) -> TemplateRead:
    """Read one template."""
    return await service.get(session, ctx, principal, key)


@router.put("/{key}", response_model=TemplateRead, responses=errors(401, 403, 404, 413, 422))
async def replace_template(
    key: KeyPath,
    payload: TemplateReplace,
    principal: AdminPrincipal,
    session: WriteSession,
    ctx: Ctx,
) -> TemplateRead:
    """Replace a template."""
    return await service.replace(session, ctx, principal, key, payload)


@router.patch("/{key}", response_model=TemplateRead, responses=errors(401, 403, 404, 413, 422))
async def patch_template(
    key: KeyPath,
    payload: TemplatePatch,
    principal: AdminPrincipal,
    session: WriteSession,
    ctx: Ctx,
) -> TemplateRead:
    """Change some fields of a template."""
    return await service.replace(session, ctx, principal, key, payload)


@router.delete(
    "/{key}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 403, 404, 422)
)
async def delete_template(
    key: KeyPath, principal: AdminPrincipal, session: WriteSession, ctx: Ctx
) -> Response:
    """Delete a template (accepted sends keep their rendered content)."""
    await service.delete(session, ctx, principal, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{key}/preview", response_model=PreviewRead, responses=errors(401, 403, 404, 413, 422)
)
async def preview_template(
    key: KeyPath,
    payload: PreviewRequest,
    principal: ServicePrincipal,
    session: WriteSession,
    ctx: Ctx,
) -> PreviewRead:
    """Render a template with sample data, per channel."""
    return await service.preview(session, ctx, principal, key, payload)
