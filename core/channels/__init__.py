"""Delivery channels: SMS through Twilio, email through SMTP, and sandboxes for the demo."""

from core.channels.base import (
    BAD_ADDRESS,
    FAILED,
    OPTED_OUT,
    RETRY,
    SENT,
    UNKNOWN,
    EmailSender,
    OutboundEmail,
    Outcome,
    SendResult,
    SmsSender,
)

__all__ = [
    "BAD_ADDRESS",
    "FAILED",
    "OPTED_OUT",
    "RETRY",
    "SENT",
    "UNKNOWN",
    "EmailSender",
    "OutboundEmail",
    "Outcome",
    "SendResult",
    "SmsSender",
]
