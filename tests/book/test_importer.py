"""The importer against a real database (SQLite and PostgreSQL): what an ops person would check."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.models import AuditEvent
from core.book.importer import ImportRefused, import_book
from core.book.models import Contact, Loan, LoanOfficer
from core.consent.models import ConsentEvent
from tests.book.helpers import NOW, book_row, csv_bytes


def run(session: Session, data: bytes, *, name: str = "export.csv", fmt: str = "auto",
        rejects: io.StringIO | None = None, now: datetime = NOW):  # fmt: skip
    return import_book(session=session, stream=io.BytesIO(data), name=name, fmt=fmt, now=now,
                       rejects=rejects)  # fmt: skip


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_clean_rows_land_normalized(session: Session) -> None:
    result = run(session, csv_bytes([book_row(email="Jane.Doe@GMAIL.com", note_rate="6.500%",
                                              loan_amount="$350,000.00")]))  # fmt: skip
    assert (result.rows, result.contacts_created, result.loans_created, result.los_created) == (
        1, 1, 1, 1)  # fmt: skip
    contact = session.scalars(select(Contact)).one()
    assert (contact.email, contact.phone) == ("jane.doe@gmail.com", "+14158675309")
    assert (contact.sms_consent, contact.email_consent) == ("granted", "unknown")
    loan = session.scalars(select(Loan)).one()
    assert loan.note_rate == Decimal("6.5")
    assert loan.loan_amount_cents == 35_000_000
    assert loan.funded_date.isoformat() == "2021-03-01"
    assert loan.contact_id == contact.id
    assert session.scalars(select(LoanOfficer.email)).one() == "larry@broker.com"


def test_same_person_across_loans_becomes_one_contact(session: Session) -> None:
    rows = [
        book_row(loan_number="A1"),
        # same email, other phone format: matched by email
        book_row(loan_number="A2", phone="415.867.5309", email="JANE.DOE@gmail.com"),
        # no email, same phone: matched by phone
        book_row(loan_number="A3", email="", loan_status="withdrawn", funded_date="",
                 fallout_date="2023-02-01"),
        # email only, then phone only: matched by first name + last name + ZIP
        book_row(loan_number="C1", first_name="Carl", last_name="Jones", phone="",
                 email="carl@gmail.com", property_zip="10001"),
        book_row(loan_number="C2", first_name="CARL", last_name="jones", email="",
                 phone="(212) 867-5309", property_zip="10001"),
        # a spouse on the same home phone with an email of her own is a person of her own
        book_row(loan_number="S1", first_name="Joan", email="joan.doe@gmail.com"),
    ]  # fmt: skip
    result = run(session, csv_bytes(rows))
    assert result.contacts_created == 3
    assert result.loans_created == 6
    assert result.duplicates_merged == 3
    owners = dict(session.execute(select(Loan.loan_number, Contact.email).join(Loan.contact)).all())
    assert owners == {"A1": "jane.doe@gmail.com", "A2": "jane.doe@gmail.com",
                      "A3": "jane.doe@gmail.com", "C1": "carl@gmail.com", "C2": "carl@gmail.com",
                      "S1": "joan.doe@gmail.com"}  # fmt: skip
    carl = session.scalars(select(Contact).where(Contact.email == "carl@gmail.com")).one()
    assert carl.phone == "+12128675309"  # the second row filled in his phone


def test_reimporting_the_same_file_changes_nothing(session: Session) -> None:
    data = csv_bytes([book_row(loan_number=f"L{i}", email=f"p{i}@gmail.com",
                               phone=f"(415) 867-{5300 + i}") for i in range(30)])  # fmt: skip
    first = run(session, data)
    assert first.contacts_created == 30
    before = (count(session, Contact), count(session, Loan), count(session, ConsentEvent))
    second = run(session, data)
    assert (second.contacts_created, second.contacts_updated, second.loans_created,
            second.loans_updated, second.los_created) == (0, 0, 0, 0, 0)  # fmt: skip
    assert (count(session, Contact), count(session, Loan), count(session, ConsentEvent)) == before


def test_an_updated_export_updates_changed_loans_only(session: Session) -> None:
    rows = [book_row(loan_number="L1"),
            book_row(loan_number="L2", loan_status="active", funded_date="", note_rate="",
                     first_payment_date="")]  # fmt: skip
    run(session, csv_bytes(rows))
    rows[1] = book_row(loan_number="L2", funded_date="2026-08-01", note_rate="6.25",
                       first_payment_date="2026-10-01")  # fmt: skip
    result = run(session, csv_bytes(rows))
    assert (result.loans_created, result.loans_updated) == (0, 1)
    loan = session.scalars(select(Loan).where(Loan.loan_number == "L2")).one()
    assert (loan.status, loan.note_rate) == ("funded", Decimal("6.25"))


def test_most_restrictive_consent_wins_and_opt_outs_are_never_undone(session: Session) -> None:
    run(session, csv_bytes([book_row(loan_number="L1", sms_consent="yes"),
                            book_row(loan_number="L2", sms_consent="no")]))  # fmt: skip
    contact = session.scalars(select(Contact)).one()
    assert contact.sms_consent == "denied"
    run(session, csv_bytes([book_row(loan_number="L1", sms_opt_out="yes", email_opt_out="yes")]))
    session.refresh(contact)
    assert (contact.sms_consent, contact.email_consent) == ("opted_out", "opted_out")
    # A later export that says "yes" again never undoes the opt-out.
    run(session, csv_bytes([book_row(loan_number="L1", sms_consent="yes", email_consent="yes")]))
    session.refresh(contact)
    assert (contact.sms_consent, contact.email_consent) == ("opted_out", "opted_out")
    events = session.scalars(
        select(ConsentEvent).where(ConsentEvent.new_state == "opted_out")
    ).all()
    assert {event.channel for event in events} == {"sms", "email"}
    assert all(event.source == "import:export.csv" for event in events)


def test_unknown_consent_is_filled_in_by_a_later_export(session: Session) -> None:
    run(session, csv_bytes([book_row(sms_consent="")]))
    run(session, csv_bytes([book_row(sms_consent="yes", consent_date="2026-01-02")]))
    contact = session.scalars(select(Contact)).one()
    assert contact.sms_consent == "granted"
    assert contact.sms_consent_at == datetime(2026, 1, 2, 12, tzinfo=UTC)


REJECTIONS = [
    (dict(email="", phone=""), "no valid phone or email"),
    (dict(email="jane@", phone="123"), "no valid phone or email"),
    (dict(loan_status="maybe"), "unknown loan_status 'maybe'"),
    (dict(loan_status="6"), "purchased loan"),
    (dict(note_rate=""), "note_rate is missing for a funded loan"),
    (dict(note_rate="abc"), "note_rate: 'abc' is not an interest rate"),
    (dict(loan_amount="lots"), "loan_amount: 'lots' is not an amount of money"),
    (dict(funded_date="2021-02-30"), "funded_date: '2021-02-30' is not a date"),
    (dict(application_date="someday"), "application_date: 'someday' is not a date"),
    (dict(funded_date="2027-01-01"), "funded_date 2027-01-01 is in the future"),
    (dict(sms_consent="perhaps"), "sms_consent: 'perhaps' is not yes or no"),
]


@pytest.mark.parametrize(("cells", "reason"), REJECTIONS)
def test_each_bad_row_is_rejected_with_its_line_and_reason(
    session: Session, cells: dict[str, str], reason: str
) -> None:
    rejects = io.StringIO()
    bad = {"loan_number": "BAD", "email": "x@gmail.com", "phone": "(646) 867-5309", **cells}
    rows = [book_row(loan_number="GOOD1"), book_row(**bad)]
    result = run(session, csv_bytes(rows), rejects=rejects)
    assert (result.rows, result.rejected, result.loans_created) == (2, 1, 1)
    written = list(csv.DictReader(io.StringIO(rejects.getvalue())))
    assert len(written) == 1
    assert written[0]["line"] == "3"
    assert written[0]["loan_number"] == "BAD"
    assert reason in written[0]["reason"]
    assert session.scalars(select(Loan.loan_number)).all() == ["GOOD1"]


def test_invalid_phone_beside_valid_email_keeps_the_row_with_a_warning(session: Session) -> None:
    result = run(session, csv_bytes([book_row(phone="555-1")]))
    assert (result.rejected, result.contacts_created, result.warnings) == (0, 1, 1)
    (warning,) = result.warning_details
    assert warning == "phone is not a valid US number: dropped, the row kept by its email"
    assert "555" not in warning  # warnings are logged and audited: never the number itself
    assert session.scalars(select(Contact.phone)).one() is None


def test_full_state_names_are_stored_as_their_code(session: Session) -> None:
    # Truncating to two letters made Connecticut "CO", and quiet hours Colorado's.
    result = run(session, csv_bytes([book_row(property_state="Connecticut", property_zip="06103"),
                                     book_row(loan_number="L2", email="sam@gmail.com",
                                              phone="", property_state="texas ")]))  # fmt: skip
    assert (result.rejected, result.warnings) == (0, 0)
    by_email = dict(session.execute(select(Contact.email, Contact.property_state)).all())
    assert by_email == {"jane.doe@gmail.com": "CT", "sam@gmail.com": "TX"}
    assert dict(session.execute(select(Loan.loan_number, Loan.property_state)).all()) == {
        "L1": "CT", "L2": "TX"}  # fmt: skip


def test_an_unknown_state_keeps_the_row_without_a_state_and_warns_once(session: Session) -> None:
    rows = [book_row(loan_number=f"L{i}", email=f"p{i}@gmail.com", phone="",
                     property_state="Texass", property_zip="75201") for i in range(3)]  # fmt: skip
    result = run(session, csv_bytes(rows))
    assert (result.rows, result.rejected, result.contacts_created, result.warnings) == (3, 0, 3, 3)
    assert result.warning_details == {
        "property_state 'Texass' is not a US state or territory: left blank, quiet hours follow "
        "the ZIP and the phone's area code": 3
    }
    assert set(session.scalars(select(Contact.property_state))) == {None}
    assert set(session.scalars(select(Loan.property_zip))) == {"75201"}


def test_unmapped_headers_are_reported_and_kept_as_custom_fields(session: Session) -> None:
    columns = [*book_row().keys(), "Favorite Color"]
    result = run(session, csv_bytes([{**book_row(), "Favorite Color": "blue"}], columns))
    assert "column 'Favorite Color' matches no field: kept as a custom field" in (
        result.warning_details)  # fmt: skip
    assert session.scalars(select(Loan.custom_fields)).one() == {"Favorite Color": "blue"}


ENCOMPASS = (
    "Loan Number,Borr First Name,Borr Last Name,Borr Email,Borr Cell,Current Loan Status,"
    "Trans Details Interest Rate,Trans Details Loan Amt,Term,Loan Type,Funding Funds Released,"
    "Subject Property State,Subject Property Zip,File Contacts Loan Officer Email,Loan Officer\r\n"
    'E100,Ann,Lee,ann@gmail.com,(305) 867-5309,Loan Originated,6.875%,"$412,500.00",360,FHA,'
    "8/14/2024 10:48:18 AM,FL,33101,lo@broker.com,Lou Officer\r\n"
    "E101,Ben,Ray,ben@gmail.com,(305) 867-5310,,,,360,Conventional,,FL,33101,lo@broker.com,\r\n"
    "E102,Cy,Ong,cy@gmail.com,,4. Application withdrawn by applicant,,,,VA,,FL,33101,,"
    "Lou Officer\r\n"
)


def test_encompass_export_is_recognized_and_mapped(session: Session) -> None:
    result = run(session, ENCOMPASS.encode())
    assert result.format == "encompass"
    assert (result.rows, result.rejected, result.loans_created) == (3, 0, 3)
    loans = {loan.loan_number: loan for loan in session.scalars(select(Loan))}
    assert loans["E100"].status == "funded"
    assert loans["E100"].program == "fha"
    assert loans["E100"].note_rate == Decimal("6.875")
    assert loans["E100"].funded_date.isoformat() == "2024-08-14"
    assert loans["E101"].status == "active"  # an empty 1393 status means active
    assert loans["E102"].status == "withdrawn"
    officer = session.scalars(select(LoanOfficer)).one()
    assert loans["E102"].lo_id == officer.id  # matched by name


def test_yaml_mapping_file_for_any_other_export(session: Session, tmp_path) -> None:
    mapping = tmp_path / "mycrm.yml"
    mapping.write_text(
        "columns:\n  first_name: Client First\n  last_name: Client Last\n  email: E-Mail 1\n"
        "  loan_status: Stage\n  note_rate: Rate %\n  loan_amount: Amt\n  funded_date: Won On\n"
        "status_values:\n  Closed Won: funded\n  Lost: withdrawn\n"
        "date_format: '%d.%m.%Y'\n"
    )
    data = (b"Client First,Client Last,E-Mail 1,Stage,Rate %,Amt,Won On\n"
            b"Ann,Lee,ann@gmail.com,Closed Won,6.1,300000,14.08.2024\n"
            b"Bo,Ek,bo@gmail.com,Lost,,,\n")  # fmt: skip
    result = run(session, data, fmt=str(mapping))
    assert (result.rows, result.rejected, result.loans_created) == (2, 0, 2)
    statuses = dict(
        session.execute(select(Contact.first_name, Loan.status).join(Loan.contact)).all()
    )
    assert statuses == {"Ann": "funded", "Bo": "withdrawn"}


REFUSED = [
    (b"", "is empty"),
    (b"   \n\n", "is empty"),
    (b"PK\x03\x04\x14\x00\x06\x00binary", "is an Excel workbook"),
    (b"\x00\x01\x02\x03binary\x00data", "not a CSV file"),
    (b"alpha,beta,gamma\n1,2,3\n", "no recognizable header"),
    (b"first_name,last_name,loan_status\nA,B,funded\n", "no email or phone column"),
    ("email,loan_status,first_name\nj@gmail.com,funded,Jos\xe9\n".encode("latin-1"),
     "not valid UTF-8"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), REFUSED)
def test_refused_files_write_nothing(session: Session, data: bytes, message: str) -> None:
    with pytest.raises(ImportRefused, match=message):
        run(session, data)
    assert count(session, Contact) == count(session, Loan) == count(session, AuditEvent) == 0


def test_a_bad_byte_deep_in_the_file_refuses_the_whole_file(session: Session) -> None:
    rows = [book_row(loan_number=f"L{i}", email=f"p{i}@gmail.com") for i in range(5000)]
    data = csv_bytes(rows) + "L9999,Jos\xe9,X,j@gmail.com\n".encode("latin-1")
    with pytest.raises(ImportRefused, match="not valid UTF-8"), session.begin_nested():
        run(session, data)
    assert count(session, Contact) == count(session, Loan) == 0


def test_semicolon_and_utf16_exports_are_read(session: Session) -> None:
    rows = [book_row(first_name="José")]
    text = csv_bytes(rows).decode().replace(",", ";")
    assert run(session, text.encode()).loans_created == 1
    assert run(session, csv_bytes(rows).decode().encode("utf-16")).loans_created == 0  # same loan
    assert session.scalars(select(Contact.first_name)).one() == "José"
