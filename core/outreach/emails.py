"""The email a touch sends: addresses, the signed reply address, tracked HTML (SPEC §5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr, parseaddr

from core.book.models import Contact
from core.channels.base import OutboundEmail
from core.outreach.touch import Sender
from core.settings import Settings
from core.tokens import REPLY, sign
from core.tracks.render import Rendered


@dataclass(frozen=True)
class EmailComposer:
    """Builds each touch's email from the company's sender settings."""

    sender: Sender
    secret: str
    email_from: str
    email_domain: str

    @classmethod
    def from_settings(cls, settings: Settings, sender: Sender, secret: str) -> EmailComposer:
        """The composer for these settings; a From of the company's name when none is set."""
        email_from = settings.EMAIL_FROM or f"{sender.company.name} <outreach@winback.invalid>"
        domain = parseaddr(email_from)[1].rpartition("@")[2] or "winback.invalid"
        return cls(sender=sender, secret=secret, email_from=email_from, email_domain=domain)

    def compose(
        self, *, message_id: int, contact: Contact, rendered: Rendered, unsubscribe_url: str,
        now: datetime,
    ) -> OutboundEmail:  # fmt: skip
        """The email for one message: replies come back to a signed address naming it."""
        reply = sign(secret=self.secret, purpose=REPLY, subject=message_id, issued_at=now)
        address = (contact.email or "").strip()
        name = f"{contact.first_name} {contact.last_name}".strip()
        html = rendered.email_html
        return OutboundEmail(
            to=formataddr((name, address)) if name else address,
            from_addr=self.email_from,
            reply_to=f"reply+{reply}@{self.email_domain}",
            subject=rendered.email_subject or "",
            text=rendered.email_text or "",  # keeps the direct links: no tracking in plain text
            html=None
            if html is None
            else self.sender.links.tracked_html(html, message_id=message_id, now=now),
            message_id=f"<winback.{message_id}@{self.email_domain}>",
            list_unsubscribe_url=unsubscribe_url,
        )
