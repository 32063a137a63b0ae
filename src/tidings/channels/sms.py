"""How carriers count SMS: the encoding a text needs and the segments it is billed as.

A text that fits the GSM 03.38 default alphabet (3GPP TS 23.038) travels in 7-bit
septets; anything else forces UCS-2 for the whole message, counted in UTF-16 code units.
A single SMS holds 160 septets or 70 units. A longer message is split into concatenated
parts whose user-data header takes 7 septets (6 octets) of each, leaving 153 septets or
67 units per part; a character is never cut in two, so a GSM escape pair or a UTF-16
surrogate pair that would straddle a boundary moves whole into the next part.

Two deliberate choices, both as Twilio bills:

* the empty text is one segment (a message still goes out);
* the basic table's 0x09 is the capital ``Ç``; a lower-case ``ç`` needs UCS-2.

Twilio's "Smart Encoding" (if enabled on the account) replaces some Unicode look-alikes
with GSM characters before counting, so the provider prefers the ``num_segments`` that
Twilio reports and uses these functions only when the answer lacks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

SMSEncoding = Literal["GSM-7", "UCS-2"]

# The default alphabet in code order, 0x00-0x7F, without 0x1B (the escape to the
# extension table is not a character a text can contain).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039eÆæßÉ"  # Δ_ΦΓΛΩΠΨΣΘΞ
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Reached through the escape: each of these costs two septets.
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM_SINGLE_SEPTETS = 160
GSM_PART_SEPTETS = 153
UCS2_SINGLE_UNITS = 70
UCS2_PART_UNITS = 67


def sms_encoding(text: str) -> SMSEncoding:
    """Return ``"GSM-7"`` when every character is in the GSM default alphabet or its
    extension table, else ``"UCS-2"`` (one character outside it changes the whole text)."""
    for char in text:
        if char not in _GSM_BASIC and char not in _GSM_EXTENSION:
            return "UCS-2"
    return "GSM-7"


def sms_segments(text: str) -> int:
    """Return how many SMS segments ``text`` is sent and billed as (at least 1)."""
    if sms_encoding(text) == "GSM-7":
        septets = [2 if char in _GSM_EXTENSION else 1 for char in text]
        return _parts(septets, GSM_SINGLE_SEPTETS, GSM_PART_SEPTETS)
    # characters outside the Basic Multilingual Plane (most emoji) are surrogate pairs
    units = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return _parts(units, UCS2_SINGLE_UNITS, UCS2_PART_UNITS)


def _parts(costs: Iterable[int], single: int, per_part: int) -> int:
    costs = list(costs)
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return parts
