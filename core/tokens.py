"""Signed, URL-safe tokens for unsubscribe, savings-page, click, open and reply links.

A token is `<subject>.<issued>.<signature>`: the subject base64url-encoded, the issue time in
base-36 seconds, and a truncated HMAC-SHA256 over the purpose and those two parts. The
signature is compared as text, so any change to any character of the token is rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

UNSUBSCRIBE = "unsubscribe"
SAVINGS = "savings"
CLICK = "click"
OPEN = "open"
REPLY = "reply"

# SPEC §5: unsubscribe links never expire; savings-page and click links live at least 90 days.
# Reply addresses never expire either: a late answer is still a warm reply.
MAX_AGE: dict[str, timedelta | None] = {
    UNSUBSCRIBE: None,
    REPLY: None,
    SAVINGS: timedelta(days=180),
    CLICK: timedelta(days=180),
    OPEN: timedelta(days=180),
}

_SIGNATURE_BYTES = 16  # 128-bit tag: ample for a MAC, and keeps SMS links short
_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class TokenError(ValueError):
    """A token that was tampered with, made for another purpose, malformed or expired."""


def sign(*, secret: str, purpose: str, subject: str | int, issued_at: datetime) -> str:
    """A compact URL-safe token proving `subject` was issued for `purpose` at `issued_at`."""
    _check_secret(secret)
    subject_text = str(subject)
    if not subject_text:
        raise ValueError("a token needs a non-empty subject")
    body = f"{_b64encode(subject_text.encode())}.{_base36(_epoch_seconds(issued_at))}"
    return f"{body}.{_signature(secret, purpose, body)}"


def verify(
    *, secret: str, purpose: str, token: str, now: datetime, max_age: timedelta | None
) -> str:
    """The subject of a genuine, unexpired `purpose` token; raises TokenError otherwise."""
    _check_secret(secret)
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token")
    encoded_subject, issued, signature = parts
    expected = _signature(secret, purpose, f"{encoded_subject}.{issued}")
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise TokenError("token signature does not match")
    try:
        subject = _b64decode(encoded_subject).decode()
        issued_seconds = int(issued, 36)
    except (ValueError, binascii.Error) as exc:  # only reachable with a leaked secret
        raise TokenError("malformed token") from exc
    if max_age is not None and _epoch_seconds(now) - issued_seconds > max_age.total_seconds():
        raise TokenError("token has expired")
    return subject


def max_age_for(purpose: str) -> timedelta | None:
    """How long tokens of `purpose` stay valid (None: forever)."""
    return MAX_AGE[purpose]


def _signature(secret: str, purpose: str, body: str) -> str:
    message = f"winback-token\x00{purpose}\x00{body}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return _b64encode(digest[:_SIGNATURE_BYTES])


def _check_secret(secret: str) -> None:
    if not secret:
        raise ValueError("a token secret is required")


def _epoch_seconds(moment: datetime) -> int:
    # Naive datetimes (SQLite hands them back) are read as UTC, like the rest of Winback.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _base36(number: int) -> str:
    if number < 0:
        raise ValueError("tokens cannot be issued before 1970")
    digits = ""
    while True:
        number, remainder = divmod(number, 36)
        digits = _DIGITS36[remainder] + digits
        if number == 0:
            return digits


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
