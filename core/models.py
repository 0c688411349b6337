"""Every model, imported in one place so Alembic and create_all() see the whole schema."""

from core.audit.models import AuditEvent
from core.book.models import Contact, Loan, LoanOfficer
from core.consent.models import ConsentEvent, Suppression
from core.db import Base

__all__ = ["AuditEvent", "Base", "ConsentEvent", "Contact", "Loan", "LoanOfficer", "Suppression"]
