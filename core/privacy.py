"""Keep borrower phone numbers and emails out of logs (SPEC §8, COMPLIANCE.md §8)."""

from __future__ import annotations

import logging
import re
from email.utils import parseaddr

# E.164 (+ and 7 to 15 digits), also as it appears URL-encoded in webhook bodies (%2B...).
_PHONE = re.compile(r"(?<![\w+%])(\+|%2[bB])([1-9]\d{6,14})(?!\d)")
_EMAIL = re.compile(
    r"(?<![\w.%+-])([A-Za-z0-9._%+-]+?)(@|%40)([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)
_MASK = "***"


def mask_phone(phone: str) -> str:
    """An E.164 number with its middle hidden: '+14155550123' -> '+1415***0123'."""
    digits = phone[1:] if phone.startswith("+") else phone
    if not digits.isdigit():
        return _MASK
    tail = 4 if len(digits) >= 10 else 2
    # Always hide at least three digits, however short the number is.
    head = max(0, min(4, len(digits) - tail - 3))
    return f"+{digits[:head]}{_MASK}{digits[len(digits) - tail :]}"


def mask_email(email: str) -> str:
    """An email with the mailbox and domain name hidden: 'jane@gmail.com' -> 'j***@g***.com'.

    A display name ('Jane Doe <jane@gmail.com>') is dropped along with the address.
    """
    address = parseaddr(email)[1] or email
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return _MASK
    top_level = domain.rsplit(".", 1)[1] if "." in domain else ""
    suffix = f".{top_level}" if top_level else ""
    return f"{local[0]}{_MASK}@{domain[0]}{_MASK}{suffix}"


def _mask_phone_match(match: re.Match[str]) -> str:
    masked = mask_phone("+" + match.group(2))
    return match.group(1) + masked[1:]


def _mask_email_match(match: re.Match[str]) -> str:
    local, at, domain = match.group(1), match.group(2), match.group(3)
    return mask_email(f"{local}@{domain}").replace("@", at, 1)


def mask_contact_details(text: str) -> str:
    """The text with every E.164 phone number and email address in it masked."""
    return _PHONE.sub(_mask_phone_match, _EMAIL.sub(_mask_email_match, text))


class MaskContactDetails(logging.Filter):
    """A logging filter that masks phones and emails in the message and any traceback.

    Attach it to handlers (a logger's own filters do not see records from child loggers).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place with contact details masked; never drops a record."""
        record.msg = mask_contact_details(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_contact_details(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_contact_details(record.stack_info)
        return True
