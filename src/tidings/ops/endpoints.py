from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from tidings.deps import Ctx
from tidings.errors import ServiceUnavailable
from tidings.kit.metrics import exposition
from tidings.ops.responses import errors

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses=errors(503))
async def readyz(ctx: Ctx) -> Health:
    """The service can reach its database (503 otherwise)."""
    try:
        await ctx.db.ping()
    except Exception:
        raise ServiceUnavailable("the database is unreachable") from None
    return Health(status="ready")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        }
    },
)
async def metrics() -> Response:
    """Prometheus metrics (summed over every API process when there are several)."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)
