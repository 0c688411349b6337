"""What each setting's value must look like; every check raises ValueError with a short reason.

Settings are checked once at start, so a malformed value stops the program with one line
naming the setting (SPEC §3) instead of a traceback from deep inside a connection or a send.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgres", "postgresql", "postgresql+psycopg")
SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")
_TWILIO_SID = re.compile(r"^{prefix}[0-9a-fA-F]{{32}}$")
_SLACK_ID = re.compile(r"^[UWB][A-Z0-9]{2,20}$")
_SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,20}$")


def _port(port: int | None) -> None:
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")


def database_url(value: str) -> str:
    """An SQLAlchemy URL for SQLite (a file) or PostgreSQL."""
    try:
        url = make_url(value)
        port = url.port
    except (ArgumentError, ValueError):
        raise ValueError(
            "is not a database URL (e.g. sqlite:///winback.db or postgresql://user@host/db)"
        ) from None
    if url.drivername not in DATABASE_DRIVERS:
        raise ValueError(
            f"names an unsupported database ({url.drivername}): use sqlite or postgresql"
        )
    _port(port)
    # sqlite://x.db names a host, which SQLite has not; sqlite:// alone is an in-memory database.
    if url.drivername.startswith("sqlite") and url.host:
        raise ValueError("must name a file, with three slashes: sqlite:///path/to/winback.db")
    return value


def http_url(value: str) -> str:
    """An http:// or https:// URL with a host."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError("is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain spaces")
    _port(port)
    return value


def smtp_url(value: str) -> str:
    """smtp://[user:pass@]host:port, smtp+starttls://… or smtps://…"""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError("is not a URL") from None
    if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
        raise ValueError("must be smtp://host:port, smtp+starttls://host:port or smtps://host:port")
    _port(port)
    return value


def email_from(value: str) -> str:
    """An address, optionally with a display name: `Maple Mortgage <loans@maple.com>`."""
    from email.utils import parseaddr

    _, address = parseaddr(value)
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError(
            "is not an email address (e.g. Maple Mortgage <loans@maple.com>)"
        ) from None
    return value


def phone_number(value: str) -> str:
    """A sending number in E.164 (+14155550100)."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("must be a phone number in E.164 form, e.g. +14155550100") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number (E.164, e.g. +14155550100)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def twilio_sid(value: str, prefix: str) -> str:
    """A Twilio SID: `prefix` and 32 hex digits."""
    if not re.match(_TWILIO_SID.pattern.format(prefix=prefix), value):
        raise ValueError(f"must be {prefix} followed by 32 hex digits")
    return value


def slack_user_ids(value: str) -> str:
    """Comma-separated Slack user ids (U…, W…)."""
    for part in value.split(","):
        if part.strip() and not _SLACK_ID.match(part.strip()):
            raise ValueError(f"{part.strip()[:30]!r} is not a Slack user id (like U0123ABCD)")
    return value


def slack_channel_id(value: str) -> str:
    """A Slack channel id (C…, G…, D…), not a #name."""
    if not _SLACK_CHANNEL.match(value):
        raise ValueError("must be a Slack channel id like C0123ABCD, not a #name")
    return value


def nmls_id(value: str) -> str:
    """An NMLS unique identifier: 1 to 12 digits."""
    if not (value.isascii() and value.isdigit() and len(value) <= 12):
        raise ValueError("must be the NMLS ID's digits, e.g. 123456")
    return value
