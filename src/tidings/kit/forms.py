"""``application/x-www-form-urlencoded`` bodies (Twilio callbacks, one-click unsubscribe)."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import default as default_policy
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


MULTIPART_TYPE = "multipart/form-data"


def is_multipart(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == MULTIPART_TYPE


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str]]:
    """The text fields of a ``multipart/form-data`` body (RFC 7578); files are ignored.

    Mail providers may post one-click unsubscribes this way (RFC 8058 suggests it).
    """
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=default_policy).parsebytes(head + body)
    if not message.is_multipart():
        raise FormError("the multipart body has no parts")
    fields: list[tuple[str, str]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        try:
            value = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise FormError("a multipart field is not UTF-8") from None
        if "\x00" in name or "\x00" in value:
            raise FormError("the form body contains NUL characters")
        fields.append((name, value))
        if len(fields) > MAX_FIELDS:
            raise FormError("the form has too many fields")
    return fields
