"""The render context of one message (the contract is in core/tracks/render.py's docstring).

Numbers are formatted here, once, the way a borrower reads them: payments to the cent
("$1,199.10"), balances and costs in whole dollars ("$318,450"), rates with two decimals, or
three when the rate has them ("5.75 %", "6.125 %"). The example APR is the actuarial APR (Reg Z
Appendix J) of the example loan, with every estimated closing cost treated as a prepaid finance
charge: a conservative assumption that can only overstate the APR, never understate it.

A borrower never reads the batch's internal rate description (``Offer.describe()``: index,
offset, source, ISO date); the rate is worded from the snapshot's own fields instead
(``todays_rate_words``).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from core.book.models import Contact, Loan, LoanOfficer
from core.loanmath import apr, estimated_ltv, snapshot_quote
from core.settings import Settings, SettingsError
from core.tokens import CLICK, OPEN, SAVINGS, UNSUBSCRIBE, sign
from core.tracks.config import Step

logger = logging.getLogger(__name__)

SANDBOX_COMPANY_NAME = "Sample Brokerage"
SANDBOX_NMLS = "000000"
_PRODUCT_WORDS = {"30y": "30-year fixed", "15y": "15-year fixed"}
_THOUSANDTH = Decimal("0.001")
_CENT = Decimal("0.01")
_DOLLAR = Decimal("1")
_WARNED: set[tuple[str, ...]] = set()


@dataclass(frozen=True)
class Company:
    """The brokerage as every message names it (COMPANY_* settings, or the sandbox sample)."""

    name: str
    nmls_id: str
    address: str
    licensing: str
    support: str
    sandbox: bool = False

    def as_context(self) -> dict[str, str]:
        """The `company` section of a render context."""
        return {
            "name": self.name,
            "nmls_id": self.nmls_id,
            "address": self.address,
            "licensing": self.licensing,
            "support": self.support,
        }

    def required_lines(self, channel: str) -> tuple[str, ...]:
        """What a rendered message on `channel` must carry as configured (send-time check)."""
        if channel != "email":
            return ()
        # The email footer's licensing line and support contact (COMPLIANCE.md §5, SPEC §3).
        return tuple(line for line in (self.licensing, self.support) if line)


def goes_live(settings: Settings) -> bool:
    """True when any real channel (Slack, Twilio, SMTP) is configured."""
    return bool(settings.slack_enabled or settings.sms_enabled or settings.SMTP_URL)


def company_from_settings(settings: Settings) -> Company:
    """The brokerage's disclosures; sample values only when no real channel is configured."""
    # load_settings requires both when SMTP is on; an SMS-only install emails nobody, and
    # its HELP answer points at the web address when no support contact is configured.
    licensing = settings.COMPANY_LICENSING or ""
    support = settings.COMPANY_SUPPORT or settings.PUBLIC_BASE_URL.rstrip("/")
    missing = [
        name
        for name in ("COMPANY_NAME", "COMPANY_NMLS_ID", "COMPANY_ADDRESS")
        if not getattr(settings, name)
    ]
    if not missing:
        return Company(
            name=settings.COMPANY_NAME or "",
            nmls_id=settings.COMPANY_NMLS_ID or "",
            address=settings.COMPANY_ADDRESS or "",
            licensing=licensing,
            support=support,
        )
    if goes_live(settings):
        raise SettingsError(f"setting {missing[0]} is required for live sends but is not set")
    if tuple(missing) not in _WARNED:  # once per process, not at every dispatch pass
        _WARNED.add(tuple(missing))
        logger.warning(
            "sandbox: %s not set, messages use the sample brokerage %r, NMLS %s",
            ", ".join(missing),
            SANDBOX_COMPANY_NAME,
            SANDBOX_NMLS,
        )
    return Company(
        name=settings.COMPANY_NAME or SANDBOX_COMPANY_NAME,
        nmls_id=settings.COMPANY_NMLS_ID or SANDBOX_NMLS,
        address=settings.COMPANY_ADDRESS or "100 Sample Street, Springfield, ST 00000",
        licensing=licensing or "Sample licensing line (sandbox).",
        support=support,
        sandbox=True,
    )


def token_secret(settings: Settings) -> str:
    """The key that signs links (WINBACK_SECRET_KEY; settings refuse a live install without)."""
    return settings.secret_key


def money(value: Decimal | str) -> str:
    """Dollars and cents: '$1,199.10'."""
    return f"${Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP):,}"


def whole_dollars(value: Decimal | str) -> str:
    """Whole dollars: '$318,450'."""
    return f"${Decimal(value).quantize(_DOLLAR, rounding=ROUND_HALF_UP):,}"


def percent(value: Decimal | str) -> str:
    """A rate with two decimals, three when it has them: '5.75 %', '6.125 %'."""
    shown = f"{Decimal(value).quantize(_THOUSANDTH, rounding=ROUND_HALF_UP):.3f}"
    # 5.750 reads as 5.75, but 6.125 keeps its eighth of a point.
    return f"{shown[:-1] if shown.endswith('0') else shown} %"


def long_date(value: date | str) -> str:
    """'September 24, 2026'."""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{day:%B} {day.day}, {day.year}"


def todays_rate_words(snapshot: dict[str, Any]) -> str:
    """'today's rate of 5.75 % (our 30-year fixed rate as of December 2, 2026)' for a borrower.

    Built from the snapshot's rate, product and as-of date, never from its ``rate_source``: that
    is the loan officer's description (index, offset, source, ISO date) and means nothing to a
    borrower. The templates put the example APR beside it (COMPLIANCE.md §6).
    """
    product = snapshot.get("product")
    words = "our " + (f"{_PRODUCT_WORDS.get(product, product)} rate" if product else "rate")
    if snapshot.get("rate_as_of"):
        words += f" as of {long_date(snapshot['rate_as_of'])}"
    return f"today's rate of {percent(snapshot['offer_rate'])} ({words})"


def _ltv_words(balance: Decimal, loan: Loan | None) -> str:
    if loan is None or not loan.property_value_cents:
        return "an assumed 80%"
    ltv = estimated_ltv(balance=balance, value=Decimal(loan.property_value_cents) / 100)
    return f"{ltv.quantize(_DOLLAR, rounding=ROUND_HALF_UP)}%"


def math_strings(snapshot: dict[str, Any], loan: Loan | None) -> dict[str, str] | None:
    """The email's payment math from a rate-drop snapshot; None when the snapshot has none.

    The figures are computed exactly (core.loanmath) from the inputs the snapshot kept, so a
    borrower reads servicer-rounded cents, not the evaluation's float estimates. A snapshot
    from before the inputs were kept has its exact figures stored instead.
    """
    quote = snapshot_quote(snapshot)
    if quote is not None:
        figures = {
            "current_payment": quote.current_payment,
            "remaining_balance": quote.remaining_balance,
            "new_payment": quote.new_payment,
            "monthly_savings": quote.monthly_savings,
            "closing_costs": quote.closing_costs,
            "break_even_months": quote.break_even_months,
            "new_term_months": quote.new_term_months,
        }
    elif all(snapshot.get(key) is not None for key in _STORED_FIGURES):
        stored = (*_STORED_FIGURES, "monthly_savings", "break_even_months")
        figures = {key: snapshot.get(key) for key in stored}
        figures["new_term_months"] = int(snapshot.get("new_term_months") or 360)
    else:
        return None
    balance = Decimal(figures["remaining_balance"])
    closing_costs = Decimal(figures["closing_costs"])
    new_payment = Decimal(figures["new_payment"])
    months = figures["new_term_months"]
    example_apr = apr(amount_financed=balance - closing_costs, payment=new_payment, months=months)
    break_even = figures["break_even_months"]
    return {
        "current_payment": money(figures["current_payment"]),
        "remaining_balance": whole_dollars(balance),
        "example_rate": percent(snapshot["offer_rate"]),
        "todays_rate": todays_rate_words(snapshot),
        "example_apr": percent(example_apr),
        "new_payment": money(new_payment),
        "new_term_years": str(months // 12),
        "monthly_savings": money(figures.get("monthly_savings") or "0"),
        "closing_costs": whole_dollars(closing_costs),
        "break_even_months": "" if break_even is None else str(break_even),
        "ltv_assumed": _ltv_words(balance, loan),
        "rate_as_of": long_date(snapshot["rate_as_of"]) if snapshot.get("rate_as_of") else "",
    }


_STORED_FIGURES = (
    "current_payment",
    "remaining_balance",
    "offer_rate",
    "new_payment",
    "closing_costs",
)


def reason_for(trigger: str, snapshot: dict[str, Any]) -> dict[str, Any]:
    """Why we are writing, from the batch member's snapshot."""
    reason: dict[str, Any] = {"trigger": trigger}
    for key in ("loan_age_years", "anniversary_years", "fallout_months"):
        if snapshot.get(key) is not None:
            reason[key] = snapshot[key]
    if snapshot.get("arm_reset_date"):
        reason["arm_reset_date"] = long_date(snapshot["arm_reset_date"])
    if snapshot.get("product"):
        reason["rate_product"] = _PRODUCT_WORDS.get(snapshot["product"], snapshot["product"])
    if snapshot.get("rate_source"):
        # For the loan officer's call task only; the lint keeps it out of borrower messages.
        reason["rate_source"] = snapshot["rate_source"]
    return reason


def officer_context(officer: LoanOfficer | None, company: Company, email_from: str | None) -> dict:
    """The `lo` section; a missing NMLS ID fails the render unless this is the sandbox."""
    lo: dict[str, str] = {}
    if officer is not None:
        lo = {"name": officer.name, "email": officer.email}
        if officer.nmls_id:
            lo["nmls_id"] = officer.nmls_id
    if company.sandbox:
        lo.setdefault("name", "Sample Loan Officer")
        lo.setdefault("email", email_from or "lo@example.com")
        lo.setdefault("nmls_id", SANDBOX_NMLS)
    return lo


@dataclass(frozen=True)
class Links:
    """Where the message's links point, signed for the borrower."""

    base_url: str
    secret: str

    # The web routes (SPEC §5) a message links to, written as the web app declares them; the
    # start-up check compares this list with what the web process serves, so keep it complete.
    ROUTES: ClassVar[Mapping[str, str]] = {
        UNSUBSCRIBE: "/u/{token}",
        SAVINGS: "/s/{token}",
        CLICK: "/t/c/{token}",
        OPEN: "/t/o/{token}",
    }
    # What a sent message needs answered besides GETs of its links: RFC 8058 one-click
    # (List-Unsubscribe-Post) and Twilio's delivery-status callback (the dispatcher's).
    CALLBACKS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("POST", "/u/{token}"),
        ("POST", "/twilio/status"),
    )

    @classmethod
    def route_templates(cls) -> tuple[str, ...]:
        """Every route a message can link to, as a path template ('/u/{token}')."""
        return tuple(cls.ROUTES.values())

    @classmethod
    def required_routes(cls) -> tuple[tuple[str, str], ...]:
        """Every (method, path template) the web process must answer for sent messages."""
        return tuple(("GET", path) for path in cls.route_templates()) + cls.CALLBACKS

    def savings(self, batch_member_id: int, now: datetime) -> str:
        """The personal savings page."""
        token = sign(secret=self.secret, purpose=SAVINGS, subject=batch_member_id, issued_at=now)
        return self._url(SAVINGS, token)

    def unsubscribe(self, contact_id: int, now: datetime) -> str:
        """The unsubscribe page (and RFC 8058 one-click target)."""
        token = sign(secret=self.secret, purpose=UNSUBSCRIBE, subject=contact_id, issued_at=now)
        return self._url(UNSUBSCRIBE, token)

    def click(self, message_id: int, url: str, now: datetime) -> str:
        """A tracked link: records the click on `message_id`, then redirects to `url` only."""
        subject = f"{message_id} {url}"  # a URL holds no space; ours carry tokens, never PII
        token = sign(secret=self.secret, purpose=CLICK, subject=subject, issued_at=now)
        return self._url(CLICK, token)

    def open_pixel(self, message_id: int, now: datetime) -> str:
        """The 1×1 open pixel of `message_id`."""
        token = sign(secret=self.secret, purpose=OPEN, subject=message_id, issued_at=now)
        return self._url(OPEN, token)

    def tracked_html(self, html_body: str, *, message_id: int, now: datetime) -> str:
        """The email's HTML with every web link going through /t/c/ and an open pixel added.

        The unsubscribe link is left alone (it must work without us counting it, and mail
        scanners that follow it must not look like a person), and so are mailto:/tel:/sms:.
        """
        unsubscribe_prefix = self.base_url.rstrip("/") + self.ROUTES[UNSUBSCRIBE].split("{")[0]

        def wrap(match: re.Match[str]) -> str:
            url = html.unescape(match.group(2))
            if url.startswith(unsubscribe_prefix):
                return match.group(0)
            tracked = html.escape(self.click(message_id, url, now), quote=True)
            return f"{match.group(1)}{tracked}{match.group(3)}"

        wrapped = _WEB_HREF.sub(wrap, html_body)
        pixel_url = html.escape(self.open_pixel(message_id, now), quote=True)
        pixel = (
            f'<img src="{pixel_url}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0;">'
        )
        closing = wrapped.lower().rfind("</body>")
        if closing < 0:
            return wrapped + pixel
        return wrapped[:closing] + pixel + "\n" + wrapped[closing:]

    def _url(self, purpose: str, token: str) -> str:
        return self.base_url.rstrip("/") + self.ROUTES[purpose].format(token=token)


# An <a href="http(s)://…"> in rendered (autoescaped) HTML, quoted either way.
_WEB_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*["'])(https?://[^"'\s>]+)(["'])""", re.I)


def render_context(
    *,
    contact: Contact,
    officer: LoanOfficer | None,
    batch_member_id: int,
    trigger: str,
    snapshot: dict[str, Any],
    loan: Loan | None,
    step: Step,
    company: Company,
    links: Links,
    email_from: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Everything one step's templates may use, for one person."""
    context: dict[str, Any] = {
        "borrower": {"first_name": contact.first_name, "last_name": contact.last_name},
        "lo": officer_context(officer, company, email_from),
        "company": company.as_context(),
        "links": {
            "savings": links.savings(batch_member_id, now),
            "unsubscribe": links.unsubscribe(contact.id, now),
        },
        "step": {"number": step.number, "include_stop": step.include_stop},
        "reason": reason_for(trigger, snapshot),
    }
    math = math_strings(snapshot, loan) if step.channel != "sms" else None
    if math is not None:
        context["math"] = math
    return context
