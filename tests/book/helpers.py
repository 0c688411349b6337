"""Building small CSV exports for importer tests."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from core.book.headers import GENERIC_COLUMNS as COLUMNS

NOW = datetime(2026, 9, 24, 15, 0, tzinfo=UTC)


def book_row(**values: str) -> dict[str, str]:
    """A clean funded generic row; keyword arguments override cells."""
    row = {column: "" for column in COLUMNS}
    row.update(
        loan_number="L1", first_name="Jane", last_name="Doe", email="jane.doe@gmail.com",
        phone="(415) 867-5309", sms_consent="yes", property_state="CA", property_zip="94105",
        loan_status="funded", loan_purpose="purchase", loan_program="conventional",
        term_months="360", note_rate="6.5", loan_amount="350000", application_date="2021-01-05",
        funded_date="2021-03-01", first_payment_date="2021-05-01", property_value="450000",
        lo_email="larry@broker.com", lo_name="Larry Officer",
    )  # fmt: skip
    row.update(values)
    return row


def csv_bytes(rows: list[dict[str, str]], columns: list[str] | None = None) -> bytes:
    """The rows as a generic CSV file."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()
