from __future__ import annotations

import pytest

from tidings.channels.sms import sms_encoding, sms_segments

EMOJI = "\U0001f600"  # 😀, outside the BMP: a UTF-16 surrogate pair
CYRILLIC = "ж"  # one UTF-16 unit, not in the GSM alphabet


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        # Twilio bills an empty body as one segment
        pytest.param("", "GSM-7", 1, id="empty"),
        pytest.param("a" * 160, "GSM-7", 1, id="gsm-160"),
        pytest.param("a" * 161, "GSM-7", 2, id="gsm-161"),
        pytest.param("a" * 306, "GSM-7", 2, id="gsm-306"),
        pytest.param("a" * 307, "GSM-7", 3, id="gsm-307"),
        pytest.param("a" * 459, "GSM-7", 3, id="gsm-459"),
        pytest.param("a" * 460, "GSM-7", 4, id="gsm-460"),
        # extension characters take two septets each
        pytest.param("€" * 80, "GSM-7", 1, id="extension-160-septets"),
        pytest.param("€" * 80 + "a", "GSM-7", 2, id="extension-161-septets"),
        pytest.param("a" * 159 + "^", "GSM-7", 2, id="extension-tips-over-160"),
        # 306 septets would fit two parts of 153, but the escape pair may not straddle
        # the first boundary: the euro moves whole into part two, one septet spills over
        pytest.param("a" * 152 + "€" + "a" * 152, "GSM-7", 3, id="escape-pair-at-boundary"),
        pytest.param("a" * 151 + "€" + "a" * 153, "GSM-7", 2, id="escape-pair-fits"),
        pytest.param("\f{}\\[~]|^€", "GSM-7", 1, id="whole-extension-table"),
        # characters outside ASCII that are still GSM
        pytest.param("Grüße, Ñoño: 5€ @ £ ¥ ¿¡ ΔΦΓΛΩΠΨΣΘΞ ÆæÉØøÅåÇ§¤", "GSM-7", 1, id="gsm-latin"),
        pytest.param("line\r\nbreak", "GSM-7", 1, id="cr-lf"),
        # a single non-GSM character switches the whole message to UCS-2
        pytest.param(CYRILLIC * 70, "UCS-2", 1, id="ucs2-70"),
        pytest.param(CYRILLIC * 71, "UCS-2", 2, id="ucs2-71"),
        pytest.param(CYRILLIC * 134, "UCS-2", 2, id="ucs2-134"),
        pytest.param(CYRILLIC * 135, "UCS-2", 3, id="ucs2-135"),
        pytest.param("a" * 69 + CYRILLIC, "UCS-2", 1, id="mixed-70"),
        pytest.param("a" * 100 + CYRILLIC, "UCS-2", 2, id="mixed-forces-ucs2"),
        pytest.param("a" * 159 + "`", "UCS-2", 3, id="backtick-is-not-gsm"),
        pytest.param("tab\there", "UCS-2", 1, id="tab-is-not-gsm"),
        pytest.param("ç", "UCS-2", 1, id="lowercase-c-cedilla-is-not-gsm"),
        pytest.param("ú", "UCS-2", 1, id="u-acute-is-not-gsm"),
        pytest.param("“smart quotes”", "UCS-2", 1, id="smart-quotes"),
        # an emoji is two UTF-16 units and is never split
        pytest.param(EMOJI * 35, "UCS-2", 1, id="emoji-70-units"),
        pytest.param(EMOJI * 35 + "a", "UCS-2", 2, id="emoji-71-units"),
        pytest.param(EMOJI, "UCS-2", 1, id="one-emoji"),
        # 134 units fit two parts of 67, but the pair would straddle the boundary
        pytest.param(CYRILLIC * 66 + EMOJI + CYRILLIC * 66, "UCS-2", 3, id="emoji-at-boundary"),
        pytest.param(CYRILLIC * 65 + EMOJI + CYRILLIC * 67, "UCS-2", 2, id="emoji-fits"),
    ],
)
def test_encoding_and_segments(text: str, encoding: str, segments: int) -> None:
    assert sms_encoding(text) == encoding
    assert sms_segments(text) == segments


def test_every_gsm_basic_character_costs_one_septet() -> None:
    basic = (
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
        "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    )
    assert len(basic) == 127  # the 128 code points of the default alphabet, minus ESC
    assert sms_encoding(basic) == "GSM-7"
    # 127 + 33 = 160 septets: one segment; one more character makes two
    assert sms_segments(basic + "a" * 33) == 1
    assert sms_segments(basic + "a" * 34) == 2


def test_the_escape_character_itself_is_not_gsm_text() -> None:
    assert sms_encoding("\x1b") == "UCS-2"
