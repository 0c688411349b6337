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
- "Not interested" (with no "right now", "at this time", "yet" beside it) is not on the
  keyword list, but a reasonable person may mean "stop contacting me": it is an ambiguous
  opt-out (the LO is told). "Not interested right now" asks for later: a reply.
- "don't stop, I'm interested" holds the word "stop" and stays an ambiguous opt-out: "Don't.
  Stop." reads the same once punctuation is gone, and erring toward opt-out is the lawful side.
- An iPhone tapback ('Liked "…your text…"') quotes our own message, which carries "Reply STOP
  to opt out": only the reaction is the person's words, so only the reaction is read.
- A stop sign (🛑, ⛔, 🚫) reads as the word "stop"; "wrong #" as "wrong number"; a spelled-out
  "S T O P" as "stop". Twilio matches none of these, so they are never ``exact_keyword``.
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
    | {"unsubscribed", "unsub", "alto", "parar", "basta", "cancelar", "detener"}
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
    "quit texting",
    "quit messaging",
    "quit sending",
    "quit contacting",
    "quit calling",
    "dont txt",
    "do not txt",
    "stop txting",
    "no more txts",
    "dont email",
    "do not email",
    "stop emailing",
    "no more texts",
    "no more messages",
    "remove me",
    "take me off",
    "leave me alone",
    "unsubscribe me",
    "lose my number",
    "delete my number",
    "fuck off",
    "f off",
    "piss off",
    "go away",
    "get lost",
    "stfu",
    "no mas",
    "no me escribas",
    "no me escriba",
    "no me manden",
    "deja de",
    "dejen de",
)
WRONG_NUMBER_PHRASES: tuple[str, ...] = (
    "wrong number",
    "wrong num",
    "wrong nbr",
    "wrong person",
    "wrong phone",
    "wrong cell",
    "wrong guy",
    "wrong girl",
    "wrong lady",
    "wrong contact",
    "not the right person",
    "no one by that name",
    "nobody by that name",
    "no one named",
    "nobody named",
    "persona equivocada",
    "numero equivocado",
    "numero incorrecto",
)
# "Not interested" may well mean "stop": an ambiguous opt-out, unless it asks for later.
NOT_INTERESTED_PHRASES: tuple[str, ...] = (
    "not interested",
    "not really interested",
    "no longer interested",
    "no me interesa",
    "no estoy interesado",
    "no estoy interesada",
)
_FOR_NOW: tuple[str, ...] = (
    "right now", "at this time", "at the moment", "atm", "now", "yet", "currently", "today",
    "this year", "for now", "ahora", "por ahora", "en este momento", "todavia",
)  # fmt: skip
# Words that only soften a keyword ("STOP PLEASE", "stop now thanks"): not ambiguous.
_FILLER: frozenset[str] = frozenset(
    {"please", "pls", "plz", "now", "thanks", "thank", "you", "thx", "me", "it", "ok", "okay"}
    | {"asap", "already", "por", "favor", "ya", "gracias", "just"}
)
_APOSTROPHES = re.compile(r"['’`´]")
_NOT_WORD = re.compile(r"[^\w]+|_+")
_STOP_SIGNS = re.compile("[\U0001f6d1\u26d4\U0001f6ab]")  # 🛑 ⛔ 🚫
_SPELLED = re.compile(r"^\w(?: \w){2,}$")  # "s t o p": three or more single letters
# An iPhone tapback (or Android's "Reacted 👍 to"): the reaction, then our quoted text.
_TAPBACK = re.compile(
    r"^\s*(liked|loved|disliked|laughed at|emphasi[sz]ed|questioned|reacted\s+\S+\s+to)"
    r"\s+[\"“”„«].*[\"“”»…]\s*$",
    re.IGNORECASE | re.DOTALL,
)


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
    return " ".join(_NOT_WORD.sub(" ", _plain(_APOSTROPHES.sub("", text.casefold()))).split())


def _plain(text: str) -> str:
    # Letters and digits lose their accents (NFKD, marks dropped; "ＳＴＯＰ" reads "stop");
    # anything else is a space, so a symbol never decomposes into letters ("STOP™" ≠ "stoptm").
    kept = []
    for ch in text:
        group = unicodedata.category(ch)[0]
        if group in "LN":
            kept.append(unicodedata.normalize("NFKD", ch))
        elif group != "M":
            kept.append(" ")
    decomposed = "".join(kept)  # NFKD may give capitals back ("Ⅻ" → "XII"): fold again
    return "".join(ch for ch in decomposed if unicodedata.category(ch)[0] != "M").casefold()


def tapback(text: str) -> str | None:
    """The reaction of a tapback ('Liked "…"' → "liked"), None when the text is not one."""
    match = _TAPBACK.match(text)
    return " ".join(match.group(1).casefold().split()) if match else None


def intent_words(text: str) -> str:
    """The normalized words read for intent: a tapback's reaction only, 🛑 as "stop", "#" as
    "number", a spelled-out "S-T-O-P" joined."""
    reaction = tapback(text)
    source = reaction if reaction is not None else text
    words = normalize(_STOP_SIGNS.sub(" stop ", source.replace("#", " number ")))
    return words.replace(" ", "") if _SPELLED.match(words) else words


def classify_inbound(text: str) -> Intent:
    """Classify an inbound SMS body; anything that may be an opt-out is one."""
    words = normalize(text)
    if words in EXACT_OPT_OUT:
        return Intent(OPT_OUT, exact_keyword=words in TWILIO_KEYWORDS, matched=words)
    if words in EXACT_OPT_IN:
        return Intent(OPT_IN, exact_keyword=True, matched=words)
    if words in EXACT_HELP:
        return Intent(HELP, exact_keyword=True, matched=words)
    words = intent_words(text)
    if words in EXACT_OPT_OUT:  # "🛑", "S T O P": Twilio did not catch these, we confirm
        return Intent(OPT_OUT, matched=words)
    padded = f" {words} "
    wrong = _first_phrase(padded, WRONG_NUMBER_PHRASES)
    if wrong:
        return Intent(OPT_OUT, wrong_number=True, matched=wrong)
    phrase = _first_phrase(padded, OPT_OUT_PHRASES)
    if phrase:
        return Intent(OPT_OUT, matched=phrase)
    return _by_word(words, padded)


def _by_word(words: str, padded: str) -> Intent:
    """An opt-out word standing alone in the message, or "not interested" without a "now"."""
    tokens = words.split()
    keyword = next((token for token in tokens if token in OPT_OUT_WORDS), None)
    if keyword is None:
        declined = _first_phrase(padded, NOT_INTERESTED_PHRASES)
        if declined and not _first_phrase(padded, _FOR_NOW):
            return Intent(OPT_OUT, ambiguous=True, matched=declined)
        return Intent(MESSAGE)
    clear = all(token in OPT_OUT_WORDS or token in _FILLER for token in tokens)
    return Intent(OPT_OUT, ambiguous=not clear, matched=keyword)


def _first_phrase(padded: str, phrases: tuple[str, ...]) -> str | None:
    """The first phrase found as whole words in the space-padded text."""
    return next((phrase for phrase in phrases if f" {phrase} " in padded), None)
