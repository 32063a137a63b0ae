"""OpenAPI descriptions of the problem documents every operation may answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

_DESCRIPTIONS = {
    400: "Malformed request (for example a garbage or mismatched cursor)",
    401: "Missing, invalid or expired bearer token",
    403: "The token lacks the role this operation needs",
    404: "No such resource in the caller's tenant",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "The body is not in the media type this operation takes",
    422: "Validation failed; `errors` names each bad field",
    503: "The database is unreachable; retry after the Retry-After delay",
}


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="URI identifying the problem type")
    title: str
    status: int
    detail: str
    instance: str | None = Field(None, description="The request id")
    errors: list[ProblemError] | None = None


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry for the problem documents an operation may answer."""
    return {code: {"model": Problem, "description": _DESCRIPTIONS[code]} for code in codes}
