from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from tidings.kit.schema import RequestModel, ResponseModel
from tidings.kit.types import Category, CleanStr

Secret = Annotated[CleanStr, Field(min_length=24, max_length=256, pattern=r"^[\x21-\x7e]+$")]


class WebhookEndpointCreate(RequestModel):
    url: Annotated[CleanStr, Field(min_length=1, max_length=2048)]
    secret: Secret | None = Field(
        None, description="Signing secret (24-256 printable characters); generated if omitted"
    )
    categories: Annotated[list[Category], Field(min_length=1, max_length=100)] | None = Field(
        None, description="Only events of these categories; all when omitted"
    )


class WebhookEndpointRead(ResponseModel):
    id: str
    url: str
    categories: list[str] | None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str = Field(description="The signing secret; shown only this once")


class WebhookEndpointPage(ResponseModel):
    items: list[WebhookEndpointRead]
    next_cursor: str | None


class RotatedSecret(ResponseModel):
    id: str
    secret: str = Field(description="The new signing secret; shown only this once")
    previous_secret_expires_at: datetime = Field(
        description="Until then events carry a second signature with the previous secret"
    )
