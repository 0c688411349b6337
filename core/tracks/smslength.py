"""How many SMS segments a text costs, the way carriers count them.

A text made only of GSM 03.38 characters is sent as GSM-7: 160 septets in one segment,
153 per segment once it is split (the rest carries the concatenation header). Characters of
the GSM extension table (``^ { } [ ] ~ \\ | €`` and form feed) take two septets, and the two
halves of one are never split across segments. Any other character switches the whole text to
UCS-2: 70 UTF-16 code units in one segment, 67 per segment once split; a character outside the
Basic Multilingual Plane (most emoji) is a surrogate pair, two units that are never split.
"""

from __future__ import annotations

GSM_7 = "GSM-7"
UCS_2 = "UCS-2"

# GSM 03.38 basic character set (the escape code 0x1B itself is not a character people type).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each is sent as escape + character, two septets.
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

_SINGLE_LIMIT = {GSM_7: 160, UCS_2: 70}
_PART_LIMIT = {GSM_7: 153, UCS_2: 67}


def sms_encoding(text: str) -> str:
    """'GSM-7' when every character is in the GSM 03.38 tables, else 'UCS-2'."""
    gsm = GSM_BASIC | GSM_EXTENSION
    return GSM_7 if all(char in gsm for char in text) else UCS_2


def _unit_costs(text: str, encoding: str) -> list[int]:
    """Per character: septets (GSM-7) or UTF-16 code units (UCS-2) it takes."""
    if encoding == GSM_7:
        return [2 if char in GSM_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def sms_segments(text: str) -> tuple[str, int]:
    """The encoding and the number of segments this text is sent as (0 for an empty text)."""
    encoding = sms_encoding(text)
    costs = _unit_costs(text, encoding)
    if sum(costs) <= _SINGLE_LIMIT[encoding]:
        return encoding, 1 if costs else 0
    part_limit = _PART_LIMIT[encoding]
    segments, used = 1, 0
    for cost in costs:
        # A two-unit character never straddles a boundary: it moves whole to the next segment.
        if used + cost > part_limit:
            segments, used = segments + 1, 0
        used += cost
    return encoding, segments
