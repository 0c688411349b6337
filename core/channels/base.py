"""What core needs from a delivery channel: the sender Protocols and their results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

Outcome = Literal["sent", "retry", "opted_out", "bad_address", "unknown", "failed"]

SENT: Final = "sent"
"""The provider accepted the message (delivery is reported later)."""
RETRY: Final = "retry"
"""Nothing was delivered and trying again later is safe (throttled, provider down)."""
OPTED_OUT: Final = "opted_out"
"""The provider refused because the recipient opted out with it (Twilio 21610)."""
BAD_ADDRESS: Final = "bad_address"
"""The phone number or mailbox cannot receive messages; do not try it again."""
UNKNOWN: Final = "unknown"
"""The request may have reached the provider but the answer was lost; never resend by itself."""
FAILED: Final = "failed"
"""Refused for another reason (configuration, content); a person should look."""


@dataclass(frozen=True)
class SendResult:
    """What happened to one send attempt, as far as Winback can tell."""

    outcome: Outcome
    provider_id: str | None = None
    error_code: str | None = None
    detail: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class OutboundEmail:
    """One fully rendered email, ready for the wire."""

    to: str
    from_addr: str
    reply_to: str | None
    subject: str
    text: str
    html: str | None
    message_id: str
    list_unsubscribe_url: str | None
    headers: dict[str, str] = field(default_factory=dict)


class SmsSender(Protocol):
    """Anything that can hand one SMS to a carrier gateway."""

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Send `body` to the E.164 number `to`; never raises for delivery problems."""
        ...


class EmailSender(Protocol):
    """Anything that can hand one email to a mail server."""

    def send(self, message: OutboundEmail) -> SendResult:
        """Send `message`; never raises for delivery problems."""
        ...
