from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from tidings.kit.schema import RequestModel, ResponseModel
from tidings.kit.types import Category, CleanStr, JSONObject, TemplateKey, UTCTimestamp
from tidings.kit.validators import Locale

Channel = Literal["in_app", "email", "sms", "push", "webhook"]
Priority = Literal["low", "normal", "high", "urgent"]
TemplateText = Annotated[CleanStr, Field(max_length=100_000)]


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a channel")
    return values


class InAppContent(RequestModel):
    title: TemplateText | None = None
    body: TemplateText | None = None
    action_url: TemplateText | None = None


class EmailContentIn(RequestModel):
    subject: TemplateText | None = None
    html: TemplateText | None = None
    text: TemplateText | None = None


class SmsContent(RequestModel):
    text: TemplateText | None = None


class PushContent(RequestModel):
    title: TemplateText | None = None
    body: TemplateText | None = None
    url: TemplateText | None = None


class TemplateContent(RequestModel):
    """Jinja2 text per channel; ``webhook`` is a JSON object whose strings are templates."""

    in_app: InAppContent | None = None
    email: EmailContentIn | None = None
    sms: SmsContent | None = None
    push: PushContent | None = None
    webhook: JSONObject | None = None


class TemplateFields(RequestModel):
    name: CleanStr = Field(min_length=1, max_length=200)
    category: Category
    priority: Priority = "normal"
    default_channels: list[Channel] = Field(min_length=1, max_length=5)
    content: TemplateContent
    locales: dict[Locale, TemplateContent] = Field(default_factory=dict, max_length=100)

    _unique_channels = field_validator("default_channels")(_unique)


class TemplateCreate(TemplateFields):
    key: TemplateKey


class TemplateReplace(TemplateFields):
    """PUT: the whole template except its key."""


class TemplatePatch(RequestModel):
    """PATCH: only the given fields change."""

    name: CleanStr | None = Field(None, min_length=1, max_length=200)
    category: Category | None = None
    priority: Priority | None = None
    default_channels: list[Channel] | None = Field(None, min_length=1, max_length=5)
    content: TemplateContent | None = None
    locales: dict[Locale, TemplateContent] | None = Field(None, max_length=100)

    _unique_channels = field_validator("default_channels")(
        lambda v: None if v is None else _unique(v)
    )


class TemplateRead(ResponseModel):
    key: str
    name: str
    category: str
    priority: Priority
    default_channels: list[Channel]
    content: dict[str, Any]
    locales: dict[str, Any]
    created_at: UTCTimestamp
    updated_at: UTCTimestamp


class TemplatePage(ResponseModel):
    items: list[TemplateRead]
    next_cursor: str | None


class PreviewRequest(RequestModel):
    data: JSONObject = Field(default_factory=dict)
    locale: Locale | None = None


class PreviewRead(ResponseModel):
    key: str
    locale: str | None
    content: dict[str, Any] = Field(description="Rendered content per channel")
