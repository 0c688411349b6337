"""What a rendered marketing message must say before it goes out (COMPLIANCE.md §4–§5).

Template lint checks the templates at start-up; this is the last look at the rendered text,
so a template or context change that drops a legal line holds nothing back silently: the
message is suppressed with rule ``missing_disclosure``. Matching is case-insensitive.
"""

from __future__ import annotations

import re

# Every marketing SMS names who is writing; lint checks the exact IDs, here we check the label.
SMS_ALWAYS: tuple[str, ...] = ("nmls",)
# Opt-out instructions: the first SMS of a track and at least every third after.
SMS_OPT_OUT_WORDINGS: tuple[str, ...] = ("reply stop", "text stop", "send stop")

# CAN-SPAM and the Equal Housing legend; NMLS is the SAFE Act identification.
EMAIL_ALWAYS: tuple[str, ...] = ("advertisement", "nmls", "equal housing")
# A working unsubscribe link (our /u/TOKEN page), or the template placeholder for it.
EMAIL_UNSUBSCRIBE = re.compile(
    r"https?://[^\s\"'<>]+/u/[^\s\"'<>]+|\{\{\s*links\.unsubscribe\s*\}\}", re.IGNORECASE
)


def missing_disclosures(
    *,
    channel: str,
    text: str,
    first_of_track: bool = False,
    company_name: str | None = None,
    required: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """The required phrases a rendered SMS or email lacks (empty when it carries them all)."""
    lowered = text.lower()
    missing: list[str] = []
    if channel == "sms":
        missing.extend(phrase for phrase in SMS_ALWAYS if phrase not in lowered)
        if first_of_track and not any(w in lowered for w in SMS_OPT_OUT_WORDINGS):
            missing.append("reply stop to opt out")
        if company_name and company_name.lower() not in lowered:
            missing.append("company name")
    elif channel == "email":
        missing.extend(phrase for phrase in EMAIL_ALWAYS if phrase not in lowered)
        if EMAIL_UNSUBSCRIBE.search(text) is None:
            missing.append("unsubscribe link")
    # The operator's own lines (the licensing line, the support contact): a template can only
    # be linted against sample values, so only here is the configured text itself checked.
    # Whitespace is compared loosely, since a line may be wrapped where it is printed.
    flat = " ".join(lowered.split())
    missing.extend(line for line in required if " ".join(line.lower().split()) not in flat)
    return tuple(missing)
