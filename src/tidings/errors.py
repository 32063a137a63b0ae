"""Errors the service raises on purpose, rendered as RFC 9457 problem documents."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://tidings.dev/problems/"


class TidingsError(Exception):
    """Base of every deliberate error; subclasses fix the HTTP status and problem type."""

    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


class BadRequest(TidingsError):
    pass


class Unauthorized(TidingsError):
    status = 401
    title = "Unauthorized"
    slug = "unauthorized"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(TidingsError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(TidingsError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(TidingsError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class PayloadTooLarge(TidingsError):
    status = 413
    title = "Content too large"
    slug = "content-too-large"


class UnsupportedMediaType(TidingsError):
    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class Unprocessable(TidingsError):
    status = 422
    title = "Validation failed"
    slug = "validation"

    def __init__(self, detail: str, *, loc: list[str | int] | None = None) -> None:
        errors = [{"loc": loc, "msg": detail}] if loc is not None else None
        super().__init__(detail, errors=errors)


class ServiceUnavailable(TidingsError):
    status = 503
    title = "Service unavailable"
    slug = "unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str | None = None,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_ or "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    return body
