from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tidings.deps import Ctx, WriteSession
from tidings.errors import Unprocessable, UnsupportedMediaType
from tidings.kit.forms import (
    FORM_TYPE,
    MULTIPART_TYPE,
    FormError,
    is_form,
    is_multipart,
    parse_form,
    parse_multipart,
)
from tidings.ops.responses import errors
from tidings.optout import service

router = APIRouter(prefix="/unsubscribe", tags=["opt-out"])

_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "A page"}
}
_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "List-Unsubscribe": {"type": "string", "enum": ["One-Click"]},
        "scope": {"type": "string", "enum": ["category", "all"]},
    },
}
_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            FORM_TYPE: {"schema": _FORM_SCHEMA},
            "multipart/form-data": {"schema": _FORM_SCHEMA},
        },
    }
}


@router.get("/{token}", response_class=HTMLResponse, responses={**_HTML, **errors(400)})
async def confirm(token: str, ctx: Ctx) -> HTMLResponse:
    """The confirmation page of an unsubscribe link (it changes nothing)."""
    claim = service.check_token(ctx, token)
    category = escape(claim.scope)
    action = escape(f"{ctx.settings.public_url}/v1/unsubscribe/{token}")
    return HTMLResponse(
        _page(
            "Unsubscribe",
            f"<p>Stop receiving <strong>{category}</strong> e-mail?</p>"
            f'<form method="post" action="{action}">'
            '<input type="hidden" name="scope" value="category">'
            f'<button type="submit">Unsubscribe from {category} e-mail</button></form>'
            f'<form method="post" action="{action}">'
            '<input type="hidden" name="scope" value="all">'
            '<button type="submit" class="secondary">Unsubscribe from all e-mail '
            "except urgent messages</button></form>",
        )
    )


@router.post(
    "/{token}",
    response_class=HTMLResponse,
    responses={**_HTML, **errors(400, 413, 415, 422)},
    openapi_extra=_FORM_BODY,
)
async def unsubscribe(
    token: str, request: Request, session: WriteSession, ctx: Ctx
) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058) or the confirmation page's choice (form body)."""
    body = await request.body()
    content_type = request.headers.get("content-type")
    try:
        if content_type and is_multipart(content_type):
            fields = dict(parse_multipart(body, content_type))
        elif not body or is_form(content_type):
            fields = dict(parse_form(body))
        else:
            raise UnsupportedMediaType(f"send the form as {FORM_TYPE} or {MULTIPART_TYPE}")
    except FormError as exc:
        raise Unprocessable(str(exc), loc=["body"]) from None
    scope = fields.get("scope", "category")
    if scope not in ("category", "all"):
        raise Unprocessable("scope must be 'category' or 'all'", loc=["body", "scope"])
    done = await service.unsubscribe(session, ctx, token, everything=scope == "all")
    what = "all e-mail except urgent messages" if done.everything else f"{done.claim.scope} e-mail"
    return HTMLResponse(_page("Unsubscribed", f"<p>You will no longer receive {escape(what)}.</p>"))


def _page(title: str, content: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
        "color:#111827}button{display:block;width:100%;margin:.75rem 0;padding:.75rem;"
        "border:0;border-radius:.5rem;background:#1d4ed8;color:#fff;font-size:1rem;"
        "cursor:pointer}button.secondary{background:#e5e7eb;color:#111827}"
        f"</style></head><body><h1>{escape(title)}</h1>{content}</body></html>"
    )
