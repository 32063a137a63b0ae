from __future__ import annotations

from email.utils import formataddr, getaddresses
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from tidings.kit.schema import RequestModel, ResponseModel
from tidings.kit.types import CleanStr
from tidings.kit.validators import check_email
from tidings.preference.schemas import PreferencesUpdate


def _check_mailbox(value: str) -> str:
    """Accept ``addr@domain`` or ``Display Name <addr@domain>``."""
    if "\r" in value or "\n" in value:
        raise ValueError("must be a single line")
    addresses = getaddresses([value])
    if len(addresses) != 1 or not addresses[0][1]:
        raise ValueError("must be one e-mail address, optionally with a display name")
    name, address = addresses[0]
    check_email(address)
    return formataddr((name, address)) if name else address


Mailbox = Annotated[CleanStr, Field(max_length=320), AfterValidator(_check_mailbox)]
ProviderName = Annotated[CleanStr, Field(pattern=r"^[a-z0-9_]{1,32}$")]
ProviderChannel = Literal["email", "sms", "push", "webhook"]
ProviderOrder = dict[
    ProviderChannel, Annotated[list[ProviderName], Field(min_length=1, max_length=10)]
]


class TenantSettingsUpdate(RequestModel):
    """Omitted keys keep their value; null removes it."""

    email_from: Mailbox | None = None
    email_reply_to: Mailbox | None = None
    providers: ProviderOrder | None = Field(
        None,
        description="Per channel, the configured providers to use, first to last (fallback)",
    )
    preference_defaults: PreferencesUpdate | None = Field(
        None,
        description="The tenant's defaults under every recipient's preferences, merged like "
        "a preferences PUT (null inside removes a default)",
    )


class TenantSettingsRead(ResponseModel):
    email_from: str | None = Field(None, description="From address of the tenant's e-mail")
    email_reply_to: str | None = Field(None, description="Reply-To of the tenant's e-mail")
    preference_defaults: dict[str, Any] = Field(
        default_factory=dict, description="The tenant's preference defaults (only those set)"
    )
    providers: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per channel, the providers in the order they are tried; a channel not "
        "listed uses every configured provider in configuration order",
    )
