"""Templates: CRUD, seeding of the hiring defaults, preview, and the variables a render sees."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.principal import Principal
from tidings.context import AppContext
from tidings.errors import Conflict, NotFound, Unprocessable
from tidings.kit.cursor import filter_scope
from tidings.kit.jobs import after_commit
from tidings.kit.paging import decode_position, next_cursor
from tidings.models import Template
from tidings.template import repository
from tidings.template.defaults import DEFAULT_TEMPLATES
from tidings.template.rendering import (
    MissingVariables,
    TemplateProblem,
    check_content,
    choose_locale_content,
    content_locales,
    render_content,
)
from tidings.template.schemas import (
    PreviewRead,
    PreviewRequest,
    TemplateCreate,
    TemplatePage,
    TemplatePatch,
    TemplateRead,
    TemplateReplace,
)
from tidings.tenant import repository as tenant_repository
from tidings.tenant.service import ensure_tenant

RESERVED_VARIABLES = frozenset(
    {"recipient", "tenant", "notification", "unsubscribe_url", "inbox_url"}
)


def _problems_to_error(problems: list[TemplateProblem]) -> Unprocessable:
    error = Unprocessable("; ".join(_describe(p) for p in problems))
    error.errors = [{"loc": ["body", *p.field.split(".")], "msg": _describe(p)} for p in problems]
    return error


def _describe(problem: TemplateProblem) -> str:
    where = f" (line {problem.line})" if problem.line else ""
    return f"{problem.field}{where}: {problem.message}"


def _check(content: dict[str, Any], locales: dict[str, Any], channels: list[str]) -> None:
    problems = check_content(content)
    for locale, localized in locales.items():
        problems += check_content(localized, prefix=f"locales.{locale}")
    if problems:
        raise _problems_to_error(problems)
    missing = [c for c in channels if c != "in_app" and not content.get(c)]
    if missing:
        raise Unprocessable(
            "default_channels names channels without content: " + ", ".join(missing),
            loc=["body", "default_channels"],
        )


def _row(tenant_id: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "key": data["key"],
        "name": data["name"],
        "category": data["category"],
        "priority": data.get("priority", "normal"),
        "default_channels": list(data["default_channels"]),
        "content": data["content"],
        "locales": data.get("locales") or {},
        "created_at": now,
        "updated_at": now,
    }


async def ensure_seeded(session: AsyncSession, ctx: AppContext, tenant_id: str) -> None:
    """Seed the hiring templates the first time a tenant reads or uses templates, once."""
    if tenant_id in ctx.seeded_tenants:
        return
    if not await tenant_repository.templates_seeded(session, tenant_id):
        await ensure_tenant(session, ctx, tenant_id)
        now = ctx.clock.now()
        if await tenant_repository.claim_template_seeding(session, tenant_id, now):
            await repository.insert_many(
                session, (_row(tenant_id, t, now) for t in DEFAULT_TEMPLATES)
            )
    after_commit(session, lambda: ctx.seeded_tenants.add(tenant_id))


async def seed(session: AsyncSession, ctx: AppContext, tenant_id: str, *, force: bool) -> int:
    """Seed the default templates once; ``force`` restores edited or deleted ones.

    Returns how many templates were written (0 when the tenant was seeded before and
    ``force`` is not given: its edits and deletions stick).
    """
    await ensure_tenant(session, ctx, tenant_id)
    now = ctx.clock.now()
    first_time = await tenant_repository.claim_template_seeding(session, tenant_id, now)
    if not (first_time or force):
        return 0
    await repository.insert_many(
        session, (_row(tenant_id, t, now) for t in DEFAULT_TEMPLATES), replace=force
    )
    return len(DEFAULT_TEMPLATES)


async def load(session: AsyncSession, ctx: AppContext, tenant_id: str, key: str) -> Template:
    await ensure_seeded(session, ctx, tenant_id)
    template = await repository.get(session, tenant_id, key)
    if template is None:
        raise NotFound(f"template {key!r} does not exist")
    return template


async def create(
    session: AsyncSession, ctx: AppContext, principal: Principal, payload: TemplateCreate
) -> TemplateRead:
    await ensure_seeded(session, ctx, principal.tenant)
    data = payload.model_dump(exclude_none=True)
    _check(data["content"], data.get("locales", {}), data["default_channels"])
    if not await repository.insert_new(session, _row(principal.tenant, data, ctx.clock.now())):
        raise Conflict(f"template {payload.key!r} already exists")
    template = await repository.get(session, principal.tenant, payload.key)
    return TemplateRead.model_validate(template)


async def get(
    session: AsyncSession, ctx: AppContext, principal: Principal, key: str
) -> TemplateRead:
    return TemplateRead.model_validate(await load(session, ctx, principal.tenant, key))


async def list_page(
    session: AsyncSession, ctx: AppContext, principal: Principal, *, limit: int, cursor: str | None
) -> TemplatePage:
    scope = filter_scope("templates", tenant=principal.tenant)
    after = decode_position(ctx.cursors, cursor, scope)
    await ensure_seeded(session, ctx, principal.tenant)
    rows = await repository.list_page(session, principal.tenant, after=after, limit=limit + 1)
    items, token = next_cursor(ctx.cursors, rows, limit, scope, lambda t: (t.created_at, t.key))
    return TemplatePage(items=[TemplateRead.model_validate(t) for t in items], next_cursor=token)


async def replace(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    key: str,
    payload: TemplateReplace | TemplatePatch,
) -> TemplateRead:
    template = await load(session, ctx, principal.tenant, key)
    changes = payload.model_dump(exclude_unset=True, exclude_none=True)
    if isinstance(payload, TemplateReplace):
        changes = payload.model_dump(exclude_none=True)
        changes.setdefault("locales", {})
    if "content" in changes:
        changes["content"] = {k: v for k, v in changes["content"].items() if v is not None}
    merged = {
        "content": changes.get("content", template.content),
        "locales": changes.get("locales", template.locales),
        "default_channels": changes.get("default_channels", template.default_channels),
    }
    _check(merged["content"], merged["locales"], merged["default_channels"])
    for name, value in changes.items():
        setattr(template, name, value)
    template.updated_at = ctx.clock.now()
    await session.flush()
    return TemplateRead.model_validate(template)


async def delete(session: AsyncSession, ctx: AppContext, principal: Principal, key: str) -> None:
    await ensure_seeded(session, ctx, principal.tenant)
    if not await repository.delete_one(session, principal.tenant, key):
        raise NotFound(f"template {key!r} does not exist")


def variables(
    ctx: AppContext,
    *,
    data: dict[str, Any],
    tenant_id: str,
    recipient: dict[str, Any],
    notification: dict[str, Any],
    unsubscribe_url: str | None = None,
) -> dict[str, Any]:
    """Everything a template sees: the send's data plus the names Tidings adds."""
    return {
        **data,
        "recipient": recipient,
        "tenant": {"id": tenant_id},
        "notification": notification,
        "unsubscribe_url": unsubscribe_url or f"{ctx.settings.public_url}/v1/me/preferences",
        "inbox_url": f"{ctx.settings.public_url}/inbox",
    }


def render(
    template_content: dict[str, Any],
    locales: dict[str, Any],
    variables_: dict[str, Any],
    *,
    channels: list[str],
    locale: str | None,
    timezone: str | None,
    loc: list[str | int],
) -> dict[str, Any]:
    """Render the chosen locale's content for ``channels``; 422 naming missing variables."""
    content = choose_locale_content(template_content, locales, locale)
    wanted = {c: content[c] for c in channels if c in content}
    if "in_app" not in wanted and "in_app" in content:
        wanted["in_app"] = content["in_app"]
    per_channel = content_locales(template_content, locales, locale)
    try:
        return render_content(wanted, variables_, timezone=timezone, channel_locales=per_channel)
    except MissingVariables as exc:
        names = ", ".join(exc.names)
        raise Unprocessable(f"template needs variables that data lacks: {names}", loc=loc) from None
    except TemplateProblem as exc:
        raise Unprocessable(f"{exc.field}: {exc.message}", loc=loc) from None


async def preview(
    session: AsyncSession, ctx: AppContext, principal: Principal, key: str, payload: PreviewRequest
) -> PreviewRead:
    template = await load(session, ctx, principal.tenant, key)
    reserved = RESERVED_VARIABLES & payload.data.keys()
    if reserved:
        raise Unprocessable(
            "data must not use the reserved names: " + ", ".join(sorted(reserved)),
            loc=["body", "data"],
        )
    recipient: dict[str, Any] = {
        "id": "preview",
        "name": "Preview Recipient",
        "email": None,
        "phone": None,
        "locale": payload.locale,
        "timezone": None,
        "data": {},
    }
    values = variables(
        ctx,
        data=payload.data,
        tenant_id=principal.tenant,
        recipient=recipient,
        notification={
            "id": "preview",
            "category": template.category,
            "priority": template.priority,
        },
    )
    channels = ["in_app", "email", "sms", "push", "webhook"]
    content = render(
        template.content,
        template.locales,
        values,
        channels=channels,
        locale=payload.locale,
        timezone=None,
        loc=["body", "data"],
    )
    return PreviewRead(key=key, locale=payload.locale, content=content)
