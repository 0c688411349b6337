"""What an inbound SMS asks for: opt-out, opt-in, help, or just a reply (COMPLIANCE.md §2).

The text is compared case-insensitively, trimmed, with punctuation, emoji and accents
stripped ("No más!!" reads as "no mas", "OPT-OUT" as "opt out", "don't" as "dont").

Decisions a loan officer may ask about:

- Opt-out wins over everything: any exact opt-out keyword used as a standalone *word* anywhere
  in the message is an opt-out (reasonable-person standard, revocation by any reasonable means).
  "STOP PLEASE" is a clear opt-out. "stopped by the office yesterday" is not: "stopped" is not
  the word "stop". A keyword inside an otherwise ordinary sentence ("see you at the end of the
  week") is still treated as an opt-out, flagged ``ambiguous`` so the LO is told and can
  follow up by phone if the borrower meant otherwise.
- Opt-in and help count only when they are the whole message ("YES" inside a reply is a
  reply). An opt-in only re-subscribes someone who opted out of SMS before; the caller checks.
- ``exact_keyword``: the whole normalized message is one of Twilio's default single-word
  keywords, so Twilio most likely answered it and we must not send a second confirmation
  ("STOP ALL", "OPT-OUT", "REMOVE" are not Twilio's: we confirm those). When the webhook
  carries Twilio's ``OptOutType``, that is authoritative and this flag is only a fallback;
  if unsure we lean to "Twilio answered": sending no confirmation is allowed, two are not.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

OPT_OUT = "opt_out"
OPT_IN = "opt_in"
HELP = "help"
MESSAGE = "message"

# The exact list of §2, as normalized text (OPT-OUT and OPT OUT read the same).
EXACT_OPT_OUT: frozenset[str] = frozenset(
    {"stop", "stopall", "stop all", "unsubscribe", "cancel", "end", "quit", "revoke"}
    | {"optout", "opt out", "remove"}
)
EXACT_OPT_IN: frozenset[str] = frozenset({"start", "yes", "unstop"})
EXACT_HELP: frozenset[str] = frozenset({"help", "info"})
# Twilio's default keywords are single words; it passes "STOP ALL" or "REMOVE" on to us.
TWILIO_KEYWORDS: frozenset[str] = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
    | EXACT_OPT_IN
    | EXACT_HELP
)

# Single words that, standing alone anywhere in a message, read as "stop messaging me".
OPT_OUT_WORDS: frozenset[str] = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "remove"}
    | {"alto", "parar", "basta"}
)
# Phrases a reasonable person uses to say the same (normalized: no apostrophes or accents).
OPT_OUT_PHRASES: tuple[str, ...] = (
    "opt out",
    "stop all",
    "dont text",
    "do not text",
    "dont message",
    "do not message",
    "dont contact",
    "do not contact",
    "dont call",
    "do not call",
    "stop texting",
    "stop messaging",
    "stop contacting",
    "stop sending",
    "stop calling",
    "no more texts",
    "no more messages",
    "remove me",
    "take me off",
    "leave me alone",
    "unsubscribe me",
    "lose my number",
    "delete my number",
    "no mas",
    "no me escribas",
    "no me escriba",
    "no me manden",
    "deja de",
    "dejen de",
)
WRONG_NUMBER_PHRASES: tuple[str, ...] = (
    "wrong number",
    "wrong person",
    "wrong phone",
    "numero equivocado",
    "numero incorrecto",
)
# Words that only soften a keyword ("STOP PLEASE", "stop now thanks"): not ambiguous.
_FILLER: frozenset[str] = frozenset(
    {"please", "pls", "plz", "now", "thanks", "thank", "you", "thx", "me", "it", "ok", "okay"}
    | {"asap", "already", "por", "favor", "ya", "gracias", "just"}
)
_APOSTROPHES = re.compile(r"['’`´]")
_NOT_WORD = re.compile(r"[^\w]+|_+")


@dataclass(frozen=True)
class Intent:
    """What an inbound message asks for, with the phrase that decided it."""

    kind: str  # 'opt_out' | 'opt_in' | 'help' | 'message'
    exact_keyword: bool = False  # the whole message is a keyword Twilio answers itself
    wrong_number: bool = False  # also mark the phone 'bad'
    ambiguous: bool = False  # an opt-out read from a keyword inside a sentence: tell the LO
    matched: str | None = None


def normalize(text: str) -> str:
    """Lower-cased words without punctuation, emoji or accents, single-spaced."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.sub(" ", _APOSTROPHES.sub("", plain)).split())


def classify_inbound(text: str) -> Intent:
    """Classify an inbound SMS body; anything that may be an opt-out is one."""
    words = normalize(text)
    if words in EXACT_OPT_OUT:
        return Intent(OPT_OUT, exact_keyword=words in TWILIO_KEYWORDS, matched=words)
    if words in EXACT_OPT_IN:
        return Intent(OPT_IN, exact_keyword=True, matched=words)
    if words in EXACT_HELP:
        return Intent(HELP, exact_keyword=True, matched=words)
    padded = f" {words} "
    wrong = _first_phrase(padded, WRONG_NUMBER_PHRASES)
    if wrong:
        return Intent(OPT_OUT, wrong_number=True, matched=wrong)
    phrase = _first_phrase(padded, OPT_OUT_PHRASES)
    if phrase:
        return Intent(OPT_OUT, matched=phrase)
    tokens = words.split()
    keyword = next((token for token in tokens if token in OPT_OUT_WORDS), None)
    if keyword is None:
        return Intent(MESSAGE)
    clear = all(token in OPT_OUT_WORDS or token in _FILLER for token in tokens)
    return Intent(OPT_OUT, ambiguous=not clear, matched=keyword)


def _first_phrase(padded: str, phrases: tuple[str, ...]) -> str | None:
    """The first phrase found as whole words in the space-padded text."""
    return next((phrase for phrase in phrases if f" {phrase} " in padded), None)
