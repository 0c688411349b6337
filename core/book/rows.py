"""Turning one CSV record into a clean, typed row, or a rejection with its reason."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from core.book.headers import HeaderMap
from core.book.models import (
    DENIED_CONSENT,
    FALLOUT_STATUSES,
    FUNDED,
    GRANTED,
    OPTED_OUT,
    UNKNOWN,
)
from core.book.normalize import (
    CellError,
    normalize_email,
    normalize_phone,
    parse_date,
    parse_flag,
    parse_money_cents,
    parse_program,
    parse_purpose,
    parse_rate,
    parse_status,
    parse_term_months,
)
from core.book.states import usps_code

DATE_FIELDS = (
    "consent_date",
    "application_date",
    "funded_date",
    "fallout_date",
    "action_date",
    "first_payment_date",
    "arm_first_adjustment_date",
)


class RowRejected(ValueError):
    """A row that cannot be imported; the message is the reason written to the rejects file."""


@dataclass(slots=True)
class BookRow:
    """One clean row: a person and one of their loans."""

    line: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    name_zip_key: str | None
    property_state: str | None
    property_zip: str | None
    sms_consent: str
    email_consent: str
    consent_date: date | None
    lo_email: str | None
    lo_name: str | None
    loan: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _cell(record: list[str], header_map: HeaderMap) -> dict[str, str]:
    return {
        our_field: record[index].strip() if index < len(record) else ""
        for index, our_field in header_map.columns.items()
    }


def _custom_fields(record: list[str], headers: list[str], header_map: HeaderMap) -> dict[str, str]:
    return {
        headers[index].strip(): value.strip()
        for index, value in enumerate(record)
        if index not in header_map.columns and index < len(headers) and value.strip()
    }


def _split_full_name(full: str) -> tuple[str, str]:
    if "," in full:  # "Last, First"
        last, _, first = full.partition(",")
        return first.strip(), last.strip()
    first, _, last = full.strip().rpartition(" ")
    return (first, last) if first else (last, "")


def _consent(granted: bool | None, opted_out: bool | None) -> str:
    if opted_out:
        return OPTED_OUT
    if granted is True:
        return GRANTED
    if granted is False:
        return DENIED_CONSENT
    return UNKNOWN


def _dates(cells: dict[str, str], date_format: str | None) -> dict[str, date | None]:
    parsed: dict[str, date | None] = {}
    for name in DATE_FIELDS:
        raw = cells.get(name, "")
        try:
            parsed[name] = parse_date(raw, fmt=date_format) if raw else None
        except CellError as exc:
            raise RowRejected(f"{name}: {exc}") from None
    return parsed


def _contact_points(cells: dict[str, str], warnings: list[str]) -> tuple[str | None, str | None]:
    raw_phone = cells.get("phone", "") or cells.get("phone_home", "")
    raw_email = cells.get("email", "")
    phone = normalize_phone(raw_phone) if raw_phone else None
    if phone is None and cells.get("phone") and cells.get("phone_home"):
        phone = normalize_phone(cells["phone_home"])
    email = normalize_email(raw_email) if raw_email else None
    if phone is None and email is None:
        problems = []
        if raw_phone:
            problems.append(f"phone '{raw_phone}' is not a valid US number")
        if raw_email:
            problems.append(f"email '{raw_email}' is not a valid address")
        detail = "; ".join(problems) or "both are blank"
        raise RowRejected(f"no valid phone or email ({detail})")
    if raw_phone and phone is None:
        # Warnings are grouped, logged and audited: they never carry the number itself.
        warnings.append("phone is not a valid US number: dropped, the row kept by its email")
    if raw_email and email is None:
        warnings.append("email is not a valid address: dropped, the row kept by its phone")
    return phone, email


def _flags(cells: dict[str, str]) -> dict[str, bool | None]:
    flags = {}
    for name in ("sms_consent", "email_consent", "sms_opt_out", "email_opt_out"):
        try:
            flags[name] = parse_flag(cells.get(name, ""))
        except CellError as exc:
            raise RowRejected(f"{name}: {exc}") from None
    return flags


def _numbers(cells: dict[str, str], status: str, warnings: list[str]) -> dict[str, Any]:
    numbers: dict[str, Any] = {}
    for name, parser in (
        ("note_rate", parse_rate),
        ("loan_amount", parse_money_cents),
        ("property_value", parse_money_cents),
        ("term_months", parse_term_months),
    ):
        raw = cells.get(name, "")
        try:
            numbers[name] = parser(raw) if raw else None
        except CellError as exc:
            if status == FUNDED and name in ("note_rate", "loan_amount"):
                raise RowRejected(f"{name}: {exc}") from None
            warnings.append(f"{name}: {exc}: left blank")
            numbers[name] = None
    if status == FUNDED:
        for name in ("note_rate", "loan_amount"):
            if numbers[name] is None:
                raise RowRejected(f"{name} is missing for a funded loan")
    return numbers


# A cell of letters alone cannot be a phone number or an email, so it is safe to quote in a
# warning (warnings are logged and audited); anything else is described without its value.
_QUOTABLE_STATE = re.compile(r"[A-Za-z][A-Za-z .,'-]{0,29}")


def _state(cells: dict[str, str], warnings: list[str]) -> str | None:
    raw = cells.get("property_state", "")
    if not raw:
        return None
    state = usps_code(raw)
    if state is None:
        # Kept, not rejected: compliance places the borrower by the ZIP and the phone instead.
        quoted = f" '{raw}'" if _QUOTABLE_STATE.fullmatch(raw) else ""
        warnings.append(
            f"property_state{quoted} is not a US state or territory: left blank, "
            "quiet hours follow the ZIP and the phone's area code"
        )
    return state


def synthetic_loan_number(*parts: object) -> str:
    """A stable key for a row without a loan number, so re-imports find the same loan."""
    digest = hashlib.sha1("|".join(str(part) for part in parts).encode()).hexdigest()
    return f"auto-{digest[:20]}"


def _names(cells: dict[str, str]) -> tuple[str, str]:
    first, last = cells.get("first_name", ""), cells.get("last_name", "")
    if not (first or last) and cells.get("full_name"):
        first, last = _split_full_name(cells["full_name"])
    return first[:100], last[:100]


def parse_row(
    record: list[str],
    *,
    line: int,
    headers: list[str],
    header_map: HeaderMap,
    today: date,
    source: str,
) -> BookRow:
    """Validate and normalize one record; raises RowRejected with a human reason."""
    if len(record) > len(headers) and any(value.strip() for value in record[len(headers) :]):
        raise RowRejected(
            f"row has {len(record)} fields but the header has {len(headers)} (an unquoted comma?)"
        )
    cells = _cell(record, header_map)
    preset = header_map.preset
    warnings: list[str] = []
    try:
        status = parse_status(
            cells.get("loan_status", ""), blank=preset.blank_status, extra=preset.status_values
        )
    except CellError as exc:
        raise RowRejected(str(exc)) from None
    phone, email = _contact_points(cells, warnings)
    dates = _dates(cells, preset.date_format)
    flags = _flags(cells)
    numbers = _numbers(cells, status, warnings)

    funded_date = dates["funded_date"]
    fallout_date = dates["fallout_date"]
    if status == FUNDED and funded_date is None:
        funded_date = dates["action_date"]
    if status in FALLOUT_STATUSES and fallout_date is None:
        fallout_date = dates["action_date"]
    if funded_date and funded_date > today:
        raise RowRejected(f"funded_date {funded_date.isoformat()} is in the future")

    program, is_arm = parse_program(cells.get("loan_type", "") or cells.get("loan_program", ""))
    program_name = cells.get("loan_program") or cells.get("loan_type") or None
    if program_name and not is_arm:
        is_arm = parse_program(program_name)[1]
    is_arm = is_arm or dates["arm_first_adjustment_date"] is not None

    state = _state(cells, warnings)
    zip5 = cells.get("property_zip", "")[:5] or None
    if zip5 and zip5.isdigit() and len(zip5) < 5:
        zip5 = zip5.zfill(5)  # spreadsheets drop New England's leading zero
    first, last = _names(cells)
    name_zip_key = f"{first}|{last}|{zip5}".lower() if first and last and zip5 else None

    loan_number = cells.get("loan_number") or synthetic_loan_number(
        email, phone, name_zip_key, dates["application_date"], funded_date, numbers["loan_amount"]
    )
    loan = {
        "loan_number": loan_number[:64],
        "status": status,
        "purpose": parse_purpose(cells.get("loan_purpose", "")),
        "program": program,
        "program_name": program_name[:120] if program_name else None,
        "is_arm": is_arm,
        "term_months": numbers["term_months"],
        "note_rate": numbers["note_rate"],
        "loan_amount_cents": numbers["loan_amount"],
        "property_value_cents": numbers["property_value"],
        "property_state": state,
        "property_zip": zip5,
        "application_date": dates["application_date"],
        "funded_date": funded_date if status == FUNDED else None,
        "fallout_date": fallout_date if status in FALLOUT_STATUSES else None,
        "first_payment_date": dates["first_payment_date"],
        "arm_first_adjustment_date": dates["arm_first_adjustment_date"],
        "custom_fields": None,
        "source": source[:300],
    }
    return BookRow(
        line=line,
        first_name=first,
        last_name=last,
        email=email,
        phone=phone,
        name_zip_key=name_zip_key,
        property_state=state,
        property_zip=zip5,
        sms_consent=_consent(flags["sms_consent"], flags["sms_opt_out"]),
        email_consent=_consent(flags["email_consent"], flags["email_opt_out"]),
        consent_date=dates["consent_date"],
        lo_email=normalize_email(cells["lo_email"]) if cells.get("lo_email") else None,
        lo_name=cells.get("lo_name") or None,
        loan=loan,
        warnings=warnings,
    )


def attach_custom_fields(
    row: BookRow, record: list[str], headers: list[str], header_map: HeaderMap
) -> None:
    """Keep the file's unmapped columns on the loan as custom fields."""
    custom = _custom_fields(record, headers, header_map)
    row.loan["custom_fields"] = custom or None
