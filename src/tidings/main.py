"""The application factory: routers, error handlers, middleware and the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from tidings import __version__
from tidings.api import include_v1
from tidings.bootstrap import service_context
from tidings.channels.registry import ProviderRegistry
from tidings.config import Settings, get_settings
from tidings.delivery.runner import EmbeddedRunner
from tidings.distributed import CeleryDispatcher
from tidings.errors import PROBLEM_BASE, TidingsError, problem
from tidings.kit import heap
from tidings.kit.clock import Clock
from tidings.kit.logging import configure_logging
from tidings.middleware import RequestContextMiddleware
from tidings.ops.endpoints import router as ops_router
from tidings.ops.responses import Problem

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# what the database driver raises while the server is unreachable
DB_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    providers: ProviderRegistry | None = None,
    run_deliveries: bool = True,
    configure_process: bool = True,
) -> FastAPI:
    """Build the service. Tests pass settings, a clock and provider fakes explicitly, and
    ``configure_process=False``: the app then leaves the process's logging and garbage
    collection alone (many apps share a test process)."""
    settings = settings or get_settings()
    if configure_process:
        configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_context(settings, clock=clock, providers=providers) as ctx:
            runner: EmbeddedRunner | None = None
            if settings.broker_url:
                ctx.dispatcher = CeleryDispatcher(settings)
            elif run_deliveries:
                runner = EmbeddedRunner(ctx)
                ctx.dispatcher = runner
                await runner.start()
            app.state.ctx = ctx
            mode = "celery" if settings.broker_url else "embedded" if runner else "none"
            log.info("tidings started", extra={"database": ctx.db.dialect, "runner": mode})
            if configure_process:
                heap.settle()
            try:
                yield
            finally:
                if runner is not None:
                    await runner.stop()
                close = getattr(ctx.dispatcher, "close", None)
                if close is not None:
                    close()

    app = FastAPI(
        title="Tidings",
        version=__version__,
        summary="Notifications and communication for hiring platforms",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.include_router(ops_router)
    include_v1(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body=settings.max_body_bytes,
        max_bulk_body=settings.max_bulk_body_bytes,
        bulk_paths=("/v1/notifications/bulk",),
    )
    _install_error_handlers(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem(
        status,
        title,
        detail,
        type_=PROBLEM_BASE + slug,
        instance=getattr(request.state, "request_id", None),
        errors=errors,
    )
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TidingsError)
    async def _tidings(request: Request, exc: TidingsError) -> JSONResponse:
        return _problem_response(
            request,
            exc.status,
            exc.title,
            exc.detail,
            slug=exc.slug,
            errors=exc.errors,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_error(e) for e in exc.errors()]
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in errors[:5]
        )
        return _problem_response(
            request, 422, "Validation failed", detail, slug="validation", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {400: "Bad request", 404: "Not found", 405: "Method not allowed"}.get(
            exc.status_code, "Error"
        )
        return _problem_response(
            request,
            exc.status_code,
            title,
            str(exc.detail),
            slug=title.lower().replace(" ", "-"),
            headers=getattr(exc, "headers", None),
        )

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        state = str(getattr(getattr(exc, "orig", None), "sqlstate", "") or "")
        if state.startswith(("22", "54")):
            # a data exception or a program limit (e.g. an index row too large): the
            # request's values, not the server, are the problem
            log.warning("value refused by the database: sqlstate %s", state)
            return _problem_response(
                request,
                422,
                "Validation failed",
                "a value is too large or malformed for storage",
                slug="validation",
            )
        log.warning("database unavailable: %s", type(exc).__name__)
        return _problem_response(
            request,
            503,
            "Service unavailable",
            "the database is unreachable; retry shortly",
            slug="unavailable",
            headers={"Retry-After": "5"},
        )

    for exc_type in DB_UNAVAILABLE:
        app.add_exception_handler(exc_type, _unavailable)

    @app.exception_handler(sa_exc.IntegrityError)
    async def _integrity(request: Request, exc: sa_exc.IntegrityError) -> JSONResponse:
        # a concurrent request changed the same rows first (e.g. erased a recipient)
        log.warning("integrity conflict: %s", type(exc.orig).__name__)
        return _problem_response(
            request,
            409,
            "Conflict",
            "a concurrent change conflicted with this request; retry it",
            slug="conflict",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return await _unavailable(request, exc)
        log.exception("unhandled error")
        return _problem_response(
            request,
            500,
            "Internal error",
            "an unexpected error occurred; it has been logged",
            slug="internal",
        )


def _error(error: Any) -> dict[str, Any]:
    loc = list(error.get("loc", ()))
    msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "json_invalid":
        # the position FastAPI reports is a character offset, not a field
        offset = loc[1] if len(loc) > 1 else None
        ctx = error.get("ctx") or {}
        msg = f"malformed JSON at character {offset}: {ctx.get('error', msg)}"
        loc = ["body"]
    return {"loc": loc, "msg": msg}


_NO_DATABASE = frozenset({"/healthz", "/metrics"})


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, with every error documented as a problem document."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for defs_name, definition in components["Problem"].pop("$defs", {}).items():
        components.setdefault(defs_name, definition)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    problem_ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path, path_item in schema.get("paths", {}).items():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("400", {"description": "The body is not UTF-8 text"})
                responses.setdefault("413", {"description": "Request body too large"})
                responses.setdefault("422", {"description": "Validation failed"})
            if operation.get("parameters"):
                responses.setdefault("422", {"description": "Validation failed"})
            if path not in _NO_DATABASE:
                responses.setdefault("503", {"description": "The database is unreachable"})
            for code, response in responses.items():
                if code.isdigit() and int(code) >= 400:
                    response["content"] = {PROBLEM_JSON: problem_ref}
    app.openapi_schema = schema
    return schema
