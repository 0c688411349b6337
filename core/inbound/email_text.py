"""Reading an inbound email (SendGrid Inbound Parse fields): who wrote, to which reply address,
whether a machine answered, what the person actually wrote, and whether they asked to stop.

Quoted history and signatures are cut with ``mail-parser-reply`` (maintained, multi-language:
"On … wrote:", Outlook's "From:/Sent:" blocks, "-----Original Message-----", signatures), then a
small pass of our own removes what it leaves behind: "Sent from my iPhone", Outlook's
underscore rule, stray ">" quote lines, a "-- " signature.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message as MailHeaders
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import ClassVar

from mailparser_reply import EmailReplyParser

from core.book.normalize import normalize_email
from core.compliance.keywords import EXACT_OPT_OUT, OPT_OUT, classify_inbound, normalize

MAX_TEXT = 20_000  # what we read of a body; an essay is kept in the ledger, not parsed whole

_AUTO_SUBJECT = re.compile(
    # The phrase opens the subject and ends it or is followed by ':', '-', '(' ("Out of Office:
    # Re: your rate"); "Re: out of the office soon?" is a person writing.
    r"^\s*(?:out of (?:the )?office|automatic reply|auto[- ]?reply|autoreply|"
    r"auto[- ]?response|away from (?:my|the) (?:desk|office)|on vacation|vacation reply|"
    r"abwesenheitsnotiz|r[ée]ponse automatique|respuesta autom[áa]tica|"
    r"undeliver(?:ed|able)|delivery status notification|mail delivery (?:failed|failure|"
    r"subsystem)|returned mail|failure notice)(?:\s+auto[- ]?reply)?\s*(?:[:(\-–]|$)",
    re.IGNORECASE,
)
_BOUNCERS = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|bounces?)(?:[+@]|$)", re.I)
_BULK = {"bulk", "junk", "list", "auto_reply"}
_TRAILERS = re.compile(
    r"^\s*(?:sent from my \w+|sent from (?:outlook|yahoo mail|mail for windows|gmail)\b|"
    r"get outlook for \w+|sent via \w+|_{8,}\s*$|-{8,}\s*$|"
    r"(?:on|el|le|am)\b.*\b(?:wrote|escribi[óo]|a [ée]crit|schrieb)\s*:\s*$)",
    re.IGNORECASE,
)
_EMAIL_OPT_OUT_PHRASES = (
    "stop emailing", "stop e mailing", "stop sending", "stop contacting", "dont email",
    "do not email", "dont e mail", "do not e mail", "no more emails", "no more email",
    "off your list", "off your mailing list", "off the list", "remove me", "take me off",
    "unsubscribe", "opt out", "optout",
)  # fmt: skip


@dataclass(frozen=True)
class InboundMail:
    """One inbound email, read."""

    sender: str | None  # the normalized From address (None: not an address)
    recipients: tuple[str, ...]  # every address it was sent to (envelope, To, Cc)
    subject: str
    message_id: str | None
    auto_reply: str | None  # why a machine wrote it (None: a person)
    body: str  # what the person wrote: quoted history and signature cut


def read_mail(form: Mapping[str, str]) -> InboundMail:
    """Read SendGrid's Inbound Parse fields into what the rest of the intake needs."""
    headers = parse_headers(form.get("headers", ""))
    sender_raw = form.get("from") or headers.get("From", "") or ""
    sender = normalize_email(parseaddr(str(sender_raw))[1]) or None
    subject = (form.get("subject") or str(headers.get("Subject", "") or "")).strip()
    text = form.get("text") or ""
    if not text.strip() and form.get("html"):
        text = html_to_text(form["html"])
    return InboundMail(
        sender=sender,
        recipients=recipients(form, headers),
        subject=subject,
        message_id=(str(headers.get("Message-ID", "") or "").strip() or None),
        auto_reply=auto_reply_reason(headers, subject, str(sender_raw)),
        body=reply_text(text[:MAX_TEXT]),
    )


def ledger_key(form: Mapping[str, str], mail: InboundMail) -> str:
    """The Message-ID (a resent webhook carries the same), else a digest of what was written."""
    if mail.message_id:
        return f"message-id:{mail.message_id}"
    parts = [form.get(name, "") for name in ("from", "to", "subject", "text")]
    return "digest:" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def parse_headers(raw: str) -> MailHeaders:
    """The raw header block SendGrid forwards, parsed (unknown or broken lines are skipped)."""
    return HeaderParser().parsestr(raw or "", headersonly=True)


def recipients(form: Mapping[str, str], headers: MailHeaders) -> tuple[str, ...]:
    """Every address the mail was for: the SMTP envelope first, then To and Cc."""
    found: list[str] = []
    try:
        envelope = json.loads(form.get("envelope") or "{}")
    except ValueError:
        envelope = {}
    if isinstance(envelope, dict) and isinstance(envelope.get("to"), list):
        found += [str(address) for address in envelope["to"]]
    fields = [form.get("to", ""), form.get("cc", ""), str(headers.get("To", "") or "")]
    found += [address for _, address in getaddresses([f for f in fields if f])]
    unique = dict.fromkeys(address.strip() for address in found if "@" in address)
    return tuple(unique)


def reply_tokens(addresses: tuple[str, ...]) -> list[str]:
    """The tokens in our reply addresses ('reply+<token>@domain'), in the order seen."""
    tokens = []
    for address in addresses:
        local = address.rpartition("@")[0]
        tag, plus, token = local.partition("+")
        if plus and tag.lower() == "reply" and token:
            tokens.append(token)
    return tokens


def auto_reply_reason(headers: MailHeaders, subject: str, sender: str) -> str | None:
    """Why this mail was written by a machine (RFC 3834 and what mail servers really send)."""
    submitted = str(headers.get("Auto-Submitted", "") or "").strip().lower()
    if submitted and submitted != "no":
        return "auto_submitted"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated"):
        if str(headers.get(name, "") or "").strip():
            return name.lower()
    if str(headers.get("Precedence", "") or "").strip().lower() in _BULK:
        return "precedence"
    if str(headers.get("X-Precedence", "") or "").strip().lower() in _BULK:
        return "precedence"
    if _BOUNCERS.match(parseaddr(sender)[1] or sender.strip()):
        return "bounce"
    if str(headers.get("Return-Path", "") or "").strip() == "<>":
        return "bounce"  # RFC 3834/5321: the null sender is a machine's
    if _AUTO_SUBJECT.match(subject):
        return "auto_reply_subject"
    return None


def reply_text(text: str) -> str:
    """What the person wrote: quoted history, signature and mail-client trailers cut."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        parsed = EmailReplyParser(languages=["en", "es"]).read(text=text)
        latest = parsed.replies[0].body if parsed.replies else text
    except Exception:  # the library is heuristic; a body it chokes on is read as it is
        latest = text
    return _trim(latest if latest.strip() or not text.strip() else text)


def _trim(text: str) -> str:
    kept: list[str] = []
    for line in text.split("\n"):
        if _TRAILERS.match(line) or line.rstrip() in ("--", "-- "):
            break  # what follows is the client's trailer, a signature or the quoted mail
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def wants_out(subject: str, body: str) -> str | None:
    """The words with which the person asked to stop emails (None: they did not).

    Email reads differently from a text: a long message often holds "end", "cancel" or "stop"
    in ordinary sentences. So a line counts when it is an opt-out without doubt (a keyword with
    at most filler words, or an opt-out phrase), or when it holds an email opt-out phrase
    ("stop emailing", "take me off your list", "unsubscribe"); a subject counts when it is a
    bare keyword ("Unsubscribe", "Re: STOP").
    """
    bare_subject = re.sub(r"^\s*(?:(?:re|fw|fwd|aw)\s*:\s*)+", "", subject, flags=re.I)
    if normalize(bare_subject) in EXACT_OPT_OUT:
        return normalize(bare_subject)
    for line in body.split("\n"):
        if not line.strip():
            continue
        intent = classify_inbound(line)
        if intent.kind == OPT_OUT and not intent.ambiguous:
            return intent.matched or normalize(line)
        padded = f" {normalize(line)} "
        phrase = next((p for p in _EMAIL_OPT_OUT_PHRASES if f" {p} " in padded), None)
        if phrase:
            return phrase
    return None


class _TextOfHtml(HTMLParser):
    """The visible text of an HTML body, without quoted mail (blockquote, gmail_quote)."""

    _SKIP: ClassVar[frozenset[str]] = frozenset({"style", "script", "head", "title", "blockquote"})
    _BREAKS: ClassVar[frozenset[str]] = frozenset(
        {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "table"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = " ".join(value or "" for name, value in attrs if name in ("class", "id"))
        quoted = "gmail_quote" in classes or "divRplyFwdMsg" in classes or "appendonsend" in classes
        if self.skipping or tag in self._SKIP or quoted:
            if tag not in ("br", "img", "meta", "hr", "input"):
                self.skipping.append(tag)
            return
        if tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if self.skipping[-1] == tag:
                self.skipping.pop()
            return
        if tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The text of an HTML-only email, quoted parts left out."""
    parser = _TextOfHtml()
    parser.feed(html[: MAX_TEXT * 4])
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
