"""Normalizing the messy cells of LOS exports: phones, emails, dates, rates, money, statuses.

Every parser takes the raw cell text and returns a clean value, None for a blank cell, or
raises `CellError` with a reason a loan officer can read.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from core.book.models import (
    ACTIVE,
    APPROVED_NOT_ACCEPTED,
    DENIED,
    FUNDED,
    INCOMPLETE,
    WITHDRAWN,
)


class CellError(ValueError):
    """A cell that cannot be read; the message says why."""


def squash(text: str) -> str:
    """Lower-case letters and digits only: how headers and status words are compared."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


# --- phones and emails -------------------------------------------------------------------


# Plain US numbers ("(415) 867-5309", "415.867.5309", "+1 415 867 5309") skip the general
# parser: a million-row import spends most of its time here. Anything else takes the full path.
_PLAIN_PHONE = re.compile(r"^\+?[\d\s().-]+$")
_NON_DIGITS = re.compile(r"\D")


@lru_cache(maxsize=65536)
def normalize_phone(raw: str) -> str | None:
    """E.164 for a valid number (US default region), None when blank or invalid."""
    raw = raw.strip()
    if not raw:
        return None
    if _PLAIN_PHONE.match(raw) and (raw[0] != "+" or raw.startswith("+1")):
        digits = _NON_DIGITS.sub("", raw)
        if len(digits) == 11 and digits[0] == "1":
            digits = digits[1:]
        if len(digits) == 10:
            # Exactly what phonenumbers.parse(raw, "US") builds for such input.
            number = phonenumbers.PhoneNumber(country_code=1, national_number=int(digits))
            if phonenumbers.is_valid_number_for_region(number, "US"):
                return f"+1{digits}"
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Ordinary ASCII addresses (dot-atoms, no quoting, no IDN) that email-validator is known to
# accept unchanged; a test checks the two agree. Everything else goes to email-validator.
_PLAIN_EMAIL = re.compile(
    r"^[a-z0-9]+(?:[._+-][a-z0-9]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}$"
)
_SPECIAL_USE = tuple(f".{name}" for name in email_validator.SPECIAL_USE_DOMAIN_NAMES)


@lru_cache(maxsize=65536)
def normalize_email(raw: str) -> str | None:
    """A validated (syntax only, no DNS), lower-cased email; None when blank or invalid."""
    raw = raw.strip()
    if not raw:
        return None
    lowered = raw.lower()
    if (
        len(lowered) <= 254
        and _PLAIN_EMAIL.match(lowered)
        and lowered.index("@") <= 64
        and not lowered.endswith(_SPECIAL_USE)
        # IDNA reserves "--" in a label's third and fourth places ("xn--"): the validator decides.
        and "--" not in lowered
    ):
        return lowered
    try:
        return validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


# --- dates --------------------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?)?$")
_US = re.compile(
    r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4}|\d{2})(?:\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp][Mm])?)?$"
)
_YMD_SLASH = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_NAMED_FORMATS = (
    "%b %d, %Y",
    "%B %d, %Y",
    "%b %d %Y",
    "%B %d %Y",
    "%d-%b-%Y",
    "%d-%b-%y",
    "%d %b %Y",
)


def _two_digit_year(year: int) -> int:
    # POSIX pivot: 69-99 are the 1900s, 00-68 the 2000s.
    return year + (1900 if year >= 69 else 2000)


def parse_date(raw: str, *, fmt: str | None = None) -> date | None:
    """A date from ISO, US (M/D/YYYY, M/D/YY, with or without a time), YYYYMMDD or month names."""
    text = raw.strip()
    if not text:
        return None
    try:
        if fmt:
            return datetime.strptime(text, fmt).date()
        if match := _ISO.match(text):
            year, month, day = (int(part) for part in match.groups())
        elif match := _US.match(text):
            month, day, year = (int(part) for part in match.groups())
            if len(match.group(3)) == 2:
                year = _two_digit_year(year)
        elif (match := _YMD_SLASH.match(text)) or (match := _COMPACT.match(text)):
            year, month, day = (int(part) for part in match.groups())
        else:
            return _parse_named_date(text)
        return date(year, month, day)
    except ValueError:
        raise CellError(f"'{text}' is not a date") from None


def _parse_named_date(text: str) -> date:
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text.replace(".", ""))
    for fmt in _NAMED_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


# --- numbers ------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def _decimal(text: str) -> Decimal:
    if not _NUMBER.match(text):
        raise InvalidOperation(text)
    return Decimal(text)


def parse_rate(raw: str) -> Decimal | None:
    """A note rate in percent from `6.5`, `6.500%`, `6.5 %` or the fraction `0.065`."""
    text = raw.strip()
    if not text:
        return None
    number = text[:-1].rstrip() if text.endswith("%") else text
    try:
        value = _decimal(number)
    except InvalidOperation:
        raise CellError(f"'{raw.strip()}' is not an interest rate") from None
    # A mortgage note rate under 1 % does not occur; such a value is a fraction (0.065 = 6.5 %).
    if 0 < value < 1 and not text.endswith("%"):
        value *= 100
    # The same band as every other rate Winback reads (SPEC §4): 1-20 %.
    if not 1 <= value <= 20:
        raise CellError(f"'{raw.strip()}' is not a plausible interest rate (1-20 %)")
    return value.quantize(Decimal("0.00001")).normalize()


# Past this no loan or home is real, and a 27-digit amount would not fit the column anyway.
_MOST_MONEY = Decimal("1000000000")


def parse_money_cents(raw: str) -> int | None:
    """Whole cents from `$350,000.00`, `350000`, `594211.0000` or `350k`."""
    text = raw.strip().replace("$", "").replace(",", "").replace(" ", "").replace("USD", "")
    if not text:
        return None
    multiplier = 1
    if text[-1:] in ("k", "K"):
        text, multiplier = text[:-1], 1000
    try:
        value = _decimal(text) * multiplier
    except InvalidOperation:
        raise CellError(f"'{raw.strip()}' is not an amount of money") from None
    if value < 0:
        raise CellError(f"'{raw.strip()}' is a negative amount")
    if value > _MOST_MONEY:
        raise CellError(f"'{raw.strip()}' is larger than any loan or home value")
    return int((value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def parse_term_months(raw: str) -> int | None:
    """A loan term in months from `360`, `30 years`, `30 yr`, `15`."""
    text = raw.strip().lower()
    if not text:
        return None
    match = re.match(r"^(\d+(?:\.\d+)?)\s*(years?|yrs?|y|months?|mos?|m)?$", text)
    if not match:
        raise CellError(f"'{raw.strip()}' is not a loan term")
    number = float(match.group(1))
    unit = match.group(2) or ""
    # A bare number up to 50 is a count of years; a mortgage is never 50 months long.
    months = number * 12 if unit.startswith("y") or (not unit and number <= 50) else number
    if not 12 <= months <= 600:
        raise CellError(f"'{raw.strip()}' is not a plausible loan term")
    return round(months)


# --- words --------------------------------------------------------------------------------

_PURCHASED = "purchased"  # HMDA 6: bought from another lender, not the broker's borrower

_STATUS_WORDS: dict[str, str] = {
    # HMDA action-taken codes
    "1": FUNDED,
    "2": APPROVED_NOT_ACCEPTED,
    "3": DENIED,
    "4": WITHDRAWN,
    "5": INCOMPLETE,
    "6": _PURCHASED,
    "7": DENIED,
    "8": APPROVED_NOT_ACCEPTED,
    # Encompass field 1393, stored values and UI descriptions (HMDA wording, 2017 and 2021)
    "loanoriginated": FUNDED,
    "applicationapprovedbutnotaccepted": APPROVED_NOT_ACCEPTED,
    "applicationdenied": DENIED,
    "applicationdeniedbyfinancialinstitution": DENIED,
    "applicationwithdrawn": WITHDRAWN,
    "applicationwithdrawnbyapplicant": WITHDRAWN,
    "fileclosedforincompleteness": INCOMPLETE,
    "loanpurchasedbyyourinstitution": _PURCHASED,
    "purchasedloan": _PURCHASED,
    "preapprovalrequestdenied": DENIED,
    "preapprovalrequestdeniedbyfinancialinstitution": DENIED,
    "preapprovalrequestapprovedbutnotaccepted": APPROVED_NOT_ACCEPTED,
    "activeloan": ACTIVE,
    # Our own words, and common LOS/CRM pipeline words (Byte, LendingPad, spreadsheets)
    "funded": FUNDED,
    "originated": FUNDED,
    "closed": FUNDED,
    "completed": FUNDED,
    "fundssent": FUNDED,
    "privateloanfunded": FUNDED,
    "shipped": FUNDED,
    "investorpurchased": FUNDED,
    "postclosingcomplete": FUNDED,
    "active": ACTIVE,
    "open": ACTIVE,
    "lead": ACTIVE,
    "prospect": ACTIVE,
    "inprocess": ACTIVE,
    "processing": ACTIVE,
    "applicationtaken": ACTIVE,
    "withdrawn": WITHDRAWN,
    "cancelled": WITHDRAWN,
    "canceled": WITHDRAWN,
    "incomplete": INCOMPLETE,
    "canceledforincompleteness": INCOMPLETE,
    "cancelledforincompleteness": INCOMPLETE,
    "closedforincompleteness": INCOMPLETE,
    "denied": DENIED,
    "declined": DENIED,
    "approvednotaccepted": APPROVED_NOT_ACCEPTED,
    "approvedbutnotaccepted": APPROVED_NOT_ACCEPTED,
}


def parse_status(raw: str, *, blank: str | None = None, extra: dict[str, str] | None = None) -> str:
    """A loan status from a word or HMDA code; `blank` is what an empty cell means."""
    text = re.sub(r"^\s*\d\.\s+", "", raw)  # "4. Application withdrawn by applicant"
    key = squash(text)
    if not key:
        if blank:
            return blank
        raise CellError("loan_status is empty")
    status = (extra or {}).get(key) or _STATUS_WORDS.get(key)
    if status is None:
        raise CellError(f"unknown loan_status '{raw.strip()}'")
    if status == _PURCHASED:
        raise CellError(
            f"loan_status '{raw.strip()}' is a purchased loan (HMDA 6), not the broker's borrower"
        )
    return status


_YES = {"yes", "y", "true", "1", "x", "t", "optedin", "granted"}
_NO = {"no", "n", "false", "0", "f", "optedout", "denied"}


def parse_flag(raw: str) -> bool | None:
    """A consent or opt-out cell: True, False, or None when blank."""
    key = squash(raw)
    if not key:
        return None
    if key in _YES:
        return True
    if key in _NO:
        return False
    raise CellError(f"'{raw.strip()}' is not yes or no")


_PROGRAMS = (
    ("fha", "fha"),
    ("va", "va"),
    ("usda", "usda"),
    ("rhs", "usda"),
    ("farmershome", "usda"),
    ("conv", "conventional"),
    ("fnma", "conventional"),
    ("fhlmc", "conventional"),
    ("fannie", "conventional"),
    ("freddie", "conventional"),
    ("jumbo", "conventional"),
    ("heloc", "other"),
)


def parse_program(raw: str) -> tuple[str | None, bool]:
    """(program, is_arm) from a loan type or program name such as `FHA 30yr` or `Conv 5/1 ARM`."""
    text = raw.strip()
    if not text:
        return None, False
    words = re.findall(r"[a-z0-9]+", text.lower())
    is_arm = "arm" in words or bool(re.search(r"\b\d+/\d+\b", text))
    joined = "".join(words)
    for needle, program in _PROGRAMS:
        if needle in words or (len(needle) > 3 and needle in joined):
            return program, is_arm
    return "other", is_arm


def parse_purpose(raw: str) -> str | None:
    """`purchase`, `refinance`, `cash_out_refinance`, `construction` or `other`."""
    key = squash(raw)
    if not key:
        return None
    if key in ("1", "purchase", "homepurchase"):
        return "purchase"
    if "nocashout" in key or "ratetermrefi" in key:
        return "refinance"
    if "cashout" in key or key == "32":
        return "cash_out_refinance"
    if "refi" in key or key == "31":
        return "refinance"
    if "construction" in key:
        return "construction"
    return "other"
