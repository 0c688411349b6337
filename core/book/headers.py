"""Matching an export's header row to our fields through alias tables.

LOS exports are reports the broker built, so header text varies ("Borrower First Name",
"Borr First Name", "Loan.BorrowerFirstName"). Headers are compared squashed: lower-case,
letters and digits only, so case, spaces and punctuation never matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.book.normalize import squash

# The `--format generic` columns, in the order SPEC §4 lists them.
GENERIC_COLUMNS = (
    "loan_number", "first_name", "last_name", "email", "phone", "sms_consent", "email_consent",
    "sms_opt_out", "email_opt_out", "consent_date", "property_state", "property_zip",
    "loan_status", "loan_purpose", "loan_program", "term_months", "note_rate", "loan_amount",
    "application_date", "funded_date", "fallout_date", "first_payment_date",
    "arm_first_adjustment_date", "property_value", "lo_email", "lo_name",
)  # fmt: skip

# Our fields: the generic columns of SPEC §4, plus a few an LOS splits differently.
FIELDS = (
    "loan_number", "first_name", "last_name", "full_name", "email", "phone", "phone_home",
    "sms_consent", "email_consent", "sms_opt_out", "email_opt_out", "consent_date",
    "property_state", "property_zip", "loan_status", "loan_purpose", "loan_program",
    "loan_type", "term_months", "note_rate", "loan_amount", "application_date", "funded_date",
    "fallout_date", "action_date", "first_payment_date", "arm_first_adjustment_date",
    "property_value", "lo_email", "lo_name",
)  # fmt: skip

GENERIC_ALIASES: dict[str, tuple[str, ...]] = {
    "loan_number": ("loan_number", "loan #", "loan no", "loan id"),
    "first_name": ("first_name", "first", "borrower first", "client first name"),
    "last_name": ("last_name", "last", "surname", "borrower last", "client last name"),
    "full_name": ("name", "full name", "borrower name", "client name"),
    "email": ("email", "email address", "e-mail", "borrower email"),
    "phone": ("phone", "phone number", "mobile", "mobile phone", "cell", "cell phone"),
    "phone_home": ("home phone",),
    "sms_consent": ("sms_consent", "text consent", "sms opt in"),
    "email_consent": ("email_consent", "email opt in"),
    "sms_opt_out": ("sms_opt_out", "text opt out"),
    "email_opt_out": ("email_opt_out", "unsubscribed"),
    "consent_date": ("consent_date",),
    "property_state": ("property_state", "state", "st"),
    "property_zip": ("property_zip", "zip", "zip code", "postal code", "zipcode"),
    "loan_status": ("loan_status", "status"),
    "loan_purpose": ("loan_purpose", "purpose"),
    "loan_program": ("loan_program", "program", "product"),
    "loan_type": ("loan_type",),
    "term_months": ("term_months", "term", "loan term"),
    "note_rate": ("note_rate", "rate", "interest rate"),
    "loan_amount": ("loan_amount", "amount"),
    "application_date": ("application_date", "app date"),
    "funded_date": ("funded_date", "funding date", "close date", "closing date"),
    "fallout_date": ("fallout_date", "withdrawn date", "denied date"),
    "action_date": ("action_taken_date",),
    "first_payment_date": ("first_payment_date", "first payment"),
    "arm_first_adjustment_date": ("arm_first_adjustment_date", "first adjustment date"),
    "property_value": ("property_value", "home value", "value", "appraised value"),
    "lo_email": ("lo_email", "loan officer email"),
    "lo_name": ("lo_name", "loan officer"),
}

# Seeded from Encompass field descriptions, pipeline canonical names (Loan.*, Fields.NNNN)
# and the default pipeline column titles (../shared/data/los_exports.md §2).
ENCOMPASS_ALIASES: dict[str, tuple[str, ...]] = {
    "loan_number": ("Loan Number", "Trans Details Loan #", "Loan.LoanNumber", "Fields.364"),
    "first_name": ("Borrower First Name", "Borr First Name", "Loan.BorrowerFirstName",
                   "Fields.4000", "Fields.36"),
    "last_name": ("Borrower Last Name", "Borr Last Name", "Last Name", "Loan.BorrowerLastName",
                  "Fields.4002", "Fields.37"),
    "full_name": ("Borrower Name", "Loan.BorrowerName"),
    "email": ("Borr Email", "Borrower Email", "Fields.1240"),
    "phone": ("Borr Cell", "Borrower Cell Phone", "Borrower Mobile Phone", "Fields.1490"),
    "phone_home": ("Borr Home Phone", "Borrower Home Phone", "Fields.66"),
    "sms_consent": ("SMS Consent", "Text Message Consent"),
    "email_consent": ("Email Consent",),
    "sms_opt_out": ("SMS Opt Out",),
    "email_opt_out": ("Email Opt Out",),
    "consent_date": ("Consent Date",),
    "property_state": ("Subject Property State", "State", "Loan.State", "Fields.14"),
    "property_zip": ("Subject Property Zip", "Zip", "Loan.Zip", "Fields.15"),
    "loan_status": ("Current Loan Status", "Trans Details Current Loan Status", "Loan Status",
                    "Loan.ActionTaken", "Loan.LoanStatus", "Fields.1393"),
    "loan_purpose": ("Loan Purpose", "Trans Details Loan Purpose", "Loan.LoanPurpose",
                     "Fields.19"),
    "loan_program": ("Loan Program", "Trans Details Loan Program", "Loan.LoanProgram",
                     "Fields.1401"),
    "loan_type": ("Loan Type", "Trans Details Loan Type", "Loan.LoanType", "Fields.1172"),
    "term_months": ("Term", "Trans Details Term (Mos)", "Loan.Term", "Fields.4"),
    "note_rate": ("Note Rate", "Trans Details Interest Rate", "Interest Rate", "Loan.LoanRate",
                  "Fields.3"),
    "loan_amount": ("Loan Amount", "Trans Details Loan Amt", "Total Loan Amount",
                    "Trans Details Total Loan Amt (w/ MIP/FF)", "Loan.LoanAmount",
                    "Loan.TotalLoanAmount", "Fields.1109", "Fields.2"),
    "application_date": ("Application Date", "Trans Details Application Date",
                         "Loan.DateFileOpened", "Fields.745"),
    "funded_date": ("Funds Released Date", "Funding Funds Released", "Funded Date",
                    "Loan.DateFunded", "Tracking - Funded Milestone Date", "Fields.1999",
                    "Fields.MS.FUN", "Closed Date", "Trans Details Closed Date", "Fields.748"),
    "fallout_date": ("Fallout Date",),
    "action_date": ("Action Taken Date", "Loan.ActionTakenDate", "Date of Final Action",
                    "Loan.DateOfFinalAction"),
    "first_payment_date": ("First Payment Date", "First Payment Due Date", "Fields.682"),
    "arm_first_adjustment_date": ("ARM First Adjustment Date", "First Rate Adjustment Date"),
    "property_value": ("Appraised Value", "Subject Property Appraised Value", "Purchase Price",
                       "Fields.356", "Fields.136"),
    "lo_email": ("File Contacts Loan Officer Email", "Loan Officer Email", "Fields.1407"),
    "lo_name": ("Loan Officer", "File Contacts Loan Officer Name", "Loan Officer Name",
                "Loan.LoanOfficerName", "Fields.317"),
}  # fmt: skip


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class Preset:
    """A named alias table, plus what an empty status means and optional value maps."""

    name: str
    aliases: dict[str, tuple[str, ...]]
    blank_status: str | None = None
    status_values: dict[str, str] = field(default_factory=dict)
    date_format: str | None = None

    def lookup(self) -> dict[str, str]:
        """Squashed alias -> our field."""
        table: dict[str, str] = {}
        for our_field, aliases in self.aliases.items():
            for alias in (our_field, *aliases):
                table.setdefault(squash(alias), our_field)
        return table


GENERIC = Preset("generic", GENERIC_ALIASES)
# An empty Encompass status (field 1393) means the loan is still active (SPEC §4).
ENCOMPASS = Preset("encompass", ENCOMPASS_ALIASES, blank_status="active")
PRESETS = {preset.name: preset for preset in (GENERIC, ENCOMPASS)}


@dataclass(frozen=True)
class HeaderMap:
    """How each column of one file maps to our fields."""

    preset: Preset
    columns: dict[int, str]  # column index -> our field
    unmapped: tuple[str, ...]  # headers kept as custom fields

    @property
    def fields(self) -> set[str]:
        """Our fields present in the file."""
        return set(self.columns.values())


def map_headers(headers: list[str], preset: Preset) -> HeaderMap:
    """Map each header through the preset's aliases; the first column wins a field."""
    lookup = preset.lookup()
    columns: dict[int, str] = {}
    taken: set[str] = set()
    unmapped: list[str] = []
    for index, header in enumerate(headers):
        our_field = lookup.get(squash(header))
        if our_field and our_field not in taken:
            columns[index] = our_field
            taken.add(our_field)
        elif header.strip():
            unmapped.append(header.strip())
    return HeaderMap(preset, columns, tuple(unmapped))


def choose_preset(headers: list[str], fmt: str) -> HeaderMap:
    """The header map for `fmt`: a preset name, `auto` (most headers matched) or a YAML file."""
    if fmt == "auto":
        candidates = [map_headers(headers, preset) for preset in PRESETS.values()]
        return max(candidates, key=lambda candidate: len(candidate.columns))
    if fmt in PRESETS:
        return map_headers(headers, PRESETS[fmt])
    return map_headers(headers, load_mapping(Path(fmt)))


def load_mapping(path: Path) -> Preset:
    """A preset from a YAML mapping file: `columns: {our_field: header or [headers]}`."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"cannot read mapping file {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("columns"), dict):
        raise MappingError(f"mapping file {path} needs a 'columns:' table of field: header")
    aliases: dict[str, tuple[str, ...]] = {}
    for our_field, headers in document["columns"].items():
        if our_field not in FIELDS:
            raise MappingError(f"mapping file {path}: unknown field '{our_field}'")
        names = [headers] if isinstance(headers, str) else headers
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise MappingError(f"mapping file {path}: '{our_field}' must name a header or a list")
        aliases[our_field] = tuple(names)
    status_values = {
        squash(str(word)): str(status)
        for word, status in (document.get("status_values") or {}).items()
    }
    return Preset(
        name=path.name,
        aliases=aliases,
        blank_status=document.get("blank_status"),
        status_values=status_values,
        date_format=document.get("date_format"),
    )
