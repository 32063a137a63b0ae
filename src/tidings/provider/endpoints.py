from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status

from tidings.deps import Ctx, WriteSession
from tidings.errors import Unprocessable, UnsupportedMediaType
from tidings.kit.forms import FORM_TYPE, FormError, is_form, parse_form
from tidings.ops.responses import errors
from tidings.provider import service

router = APIRouter(prefix="/providers", tags=["providers"])

# an empty TwiML answer: Tidings never replies to an inbound SMS itself
_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _form_body(*fields: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                FORM_TYPE: {
                    "schema": {
                        "type": "object",
                        "properties": {name: {"type": "string"} for name in fields},
                    }
                }
            },
        }
    }


async def _signed_form(
    request: Request, ctx: Ctx, signature: str | None
) -> tuple[list[tuple[str, str]], list[str]]:
    if not is_form(request.headers.get("content-type")):
        raise UnsupportedMediaType(f"Twilio posts {FORM_TYPE}")
    try:
        params = parse_form(await request.body())
    except FormError as exc:
        raise Unprocessable(str(exc), loc=["body"]) from None
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return params, service.verify_twilio(ctx, path, params, signature)


@router.post(
    "/twilio/status",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(403, 413, 415, 422),
    openapi_extra=_form_body("MessageSid", "MessageStatus", "ErrorCode", "AccountSid"),
)
async def twilio_status(
    request: Request,
    session: WriteSession,
    ctx: Ctx,
    x_twilio_signature: Annotated[str | None, Header()] = None,
) -> Response:
    """Twilio's delivery report for a message (signed with X-Twilio-Signature)."""
    params, providers = await _signed_form(request, ctx, x_twilio_signature)
    await service.twilio_status(session, ctx, params, providers)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/twilio/inbound",
    response_class=Response,
    responses={
        200: {"content": {"text/xml": {"schema": {"type": "string"}}}, "description": "TwiML"},
        **errors(403, 413, 415, 422),
    },
    openapi_extra=_form_body("From", "To", "Body", "MessagingServiceSid", "AccountSid"),
)
async def twilio_inbound(
    request: Request,
    session: WriteSession,
    ctx: Ctx,
    x_twilio_signature: Annotated[str | None, Header()] = None,
) -> Response:
    """An inbound SMS: STOP-family keywords opt the number out of that sender, START undoes."""
    params, _providers = await _signed_form(request, ctx, x_twilio_signature)
    await service.twilio_inbound(session, ctx, params)
    return Response(_EMPTY_TWIML, media_type="text/xml")
