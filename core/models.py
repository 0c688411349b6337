"""Every model, imported in one place so Alembic and create_all() see the whole schema."""

from core.attribution.models import FundedCredit
from core.audit.models import AuditEvent
from core.batches.models import Batch, BatchMember
from core.book.models import Contact, Loan, LoanOfficer
from core.cards.models import Card
from core.consent.models import ConsentEvent, Suppression
from core.db import Base
from core.holdout import HeldOut
from core.inbound.models import DeliveryEvent, Engagement, InboundEvent, Reply
from core.outreach.models import Enrollment, Message, Switch, TemplateVersion
from core.rates.models import MarketRate

__all__ = [
    "AuditEvent",
    "Base",
    "Batch",
    "BatchMember",
    "Card",
    "ConsentEvent",
    "Contact",
    "DeliveryEvent",
    "Engagement",
    "Enrollment",
    "FundedCredit",
    "HeldOut",
    "InboundEvent",
    "Loan",
    "LoanOfficer",
    "MarketRate",
    "Message",
    "Reply",
    "Suppression",
    "Switch",
    "TemplateVersion",
]
