"""``application/x-www-form-urlencoded`` bodies (Twilio callbacks, one-click unsubscribe)."""

from __future__ import annotations

from urllib.parse import parse_qsl

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 200


class FormError(ValueError):
    """The body is not a well-formed form."""


def is_form(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == FORM_TYPE


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """The form's fields in order, repeated names kept (signatures cover every pair)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError(f"the form body is not valid: {exc}") from None
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise FormError("the form body contains NUL characters")
    return pairs
