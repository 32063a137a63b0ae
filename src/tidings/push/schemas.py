from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StrictFloat, StrictInt

from tidings.kit.schema import RequestModel, ResponseModel
from tidings.kit.types import CleanStr


def _base64url(size: int, what: str) -> AfterValidator:
    def check(value: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raise ValueError(f"must be the base64url {what}") from None
        if len(raw) != size:
            raise ValueError(f"must be the base64url {what} ({size} bytes)")
        if size == 65 and raw[0] != 4:
            raise ValueError(f"must be the base64url {what} (an uncompressed P-256 point)")
        return value.rstrip("=")

    return AfterValidator(check)


class PushKeys(RequestModel):
    p256dh: Annotated[
        CleanStr, Field(max_length=128), _base64url(65, "P-256 public key of the browser")
    ]
    auth: Annotated[CleanStr, Field(max_length=64), _base64url(16, "authentication secret")]


def _ascii(value: str) -> str:
    if not value.isascii():
        raise ValueError("must be an ASCII URL (push services give browsers ASCII endpoints)")
    return value


Endpoint = Annotated[CleanStr, Field(min_length=1, max_length=2048), AfterValidator(_ascii)]


class PushSubscriptionCreate(RequestModel):
    """The browser's ``PushSubscription.toJSON()``."""

    endpoint: Endpoint
    keys: PushKeys
    expirationTime: StrictInt | StrictFloat | None = None  # noqa: N815 (the browser's name)


class PushSubscriptionDelete(RequestModel):
    endpoint: Endpoint


class PushSubscriptionRead(ResponseModel):
    id: str
    endpoint: str
    user_agent: str | None
    created_at: datetime


class PushSubscriptionPage(ResponseModel):
    items: list[PushSubscriptionRead]
    next_cursor: str | None


class VapidPublicKey(ResponseModel):
    public_key: str = Field(description="base64url of the uncompressed P-256 point")
