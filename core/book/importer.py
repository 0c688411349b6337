"""Importing an LOS/CRM export into the book: streaming, de-duplicating, idempotent.

The whole file is one transaction: a file refused half-way (an undecodable byte on line
900,000) leaves nothing behind. Rows are read and written in chunks, so memory stays bounded
whatever the file size; people already written by earlier chunks are found again through the
database, which is also how a person in an earlier import is found.

De-duplication of people, in order: the same normalized email; else the same E.164 phone;
else the same first name, last name and ZIP. The first rule that finds someone wins, and
a row never merges two existing people. A weaker match is ignored when a stronger key
conflicts: a phone match with a different email on both sides is a spouse sharing the home
phone, not the same person; a name + ZIP match needs no differing email or phone.

Consent: "unknown" carries no information, so any known state replaces it; between known
states the most restrictive wins (granted < denied < opted_out). So an import can record
new consent for someone we knew nothing about, but never undoes a "no" or an opt-out.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from core.audit.service import record
from core.book.headers import HeaderMap, MappingError, choose_preset
from core.book.models import CONSENT_RANK, FUNDED, UNKNOWN, Contact, Loan, LoanOfficer
from core.book.normalize import squash
from core.book.pipeline import ParseJob, Rejection, parsed_chunks
from core.book.rows import BookRow
from core.bulk import allocate_ids, any_of, bulk_insert
from core.consent.models import ConsentEvent

_UNDECODED = re.compile("[\udc80-\udcff]")
csv.field_size_limit(1 << 20)


class ImportRefused(Exception):
    """The file as a whole cannot be imported; nothing was written. One line, for the user."""


@dataclass
class ImportResult:
    """What an import did (the keys of SPEC §4's JSON)."""

    rows: int = 0
    contacts_created: int = 0
    contacts_updated: int = 0
    loans_created: int = 0
    loans_updated: int = 0
    duplicates_merged: int = 0
    rejected: int = 0
    los_created: int = 0
    warnings: int = 0
    sequences_stopped: int = 0
    format: str = ""
    dry_run: bool = False
    warning_details: dict[str, int] = field(default_factory=dict)
    # People with a loan newly funded by this import (not in the JSON: flows end their outreach).
    newly_funded: set[int] = field(default_factory=set)

    def warn(self, message: str) -> None:
        """Count a warning, grouping identical messages."""
        self.warnings += 1
        self.warning_details[message] = self.warning_details.get(message, 0) + 1

    def as_json(self) -> dict[str, Any]:
        """The contract's JSON keys, then extras."""
        return {
            "rows": self.rows,
            "contacts_created": self.contacts_created,
            "contacts_updated": self.contacts_updated,
            "loans_created": self.loans_created,
            "loans_updated": self.loans_updated,
            "duplicates_merged": self.duplicates_merged,
            "rejected": self.rejected,
            "los_created": self.los_created,
            "warnings": self.warnings,
            "sequences_stopped": self.sequences_stopped,
            "format": self.format,
            "dry_run": self.dry_run,
            "warning_details": dict(list(self.warning_details.items())[:50]),
        }


# --- reading the file --------------------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """Counts bytes read so a progress bar can follow a stream of unknown row count."""

    def __init__(self, raw: BinaryIO, on_bytes: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        if self._on_bytes and data:
            self._on_bytes(len(data))
        return len(data)


def _sniff(head: bytes, name: str) -> tuple[str, str]:
    """(encoding, delimiter) for a file whose first bytes are `head`; refuses non-CSV."""
    if not head.strip():
        raise ImportRefused(f"{name} is empty")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportRefused(f"{name} is an Excel workbook, not CSV: save it as CSV UTF-8 first")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in head:
        raise ImportRefused(f"{name} is not a CSV file (it contains binary data)")
    else:
        encoding = "utf-8-sig"
    try:
        text = head.decode(encoding, errors="strict")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            raise _undecodable(name, head, exc.start) from None
        text = head[: exc.start].decode(encoding)
    first_line = text.splitlines()[0] if text.splitlines() else ""
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", ";", "\t", "|")}
    delimiter = max(counts, key=lambda key: counts[key])
    return encoding, delimiter if counts[delimiter] else ","


def _undecodable(name: str, data: bytes, offset: int) -> ImportRefused:
    line = data[:offset].count(b"\n") + 1
    return ImportRefused(
        f"{name} is not valid UTF-8 (byte 0x{data[offset]:02x} on line {line}): "
        "export it as CSV UTF-8"
    )


def _records(text: TextIO, delimiter: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) for each non-blank record; the header is line 1."""
    reader = csv.reader(text, delimiter=delimiter)
    previous_line = 0
    try:
        for fields in reader:
            line = previous_line + 1
            previous_line = reader.line_num
            if fields and any(value.strip() for value in fields):
                # Undecodable bytes arrive as lone surrogates (surrogateescape): name the line.
                if bad := _UNDECODED.search("\x1f".join(fields)):
                    byte = ord(bad.group()) - 0xDC00
                    raise ImportRefused(
                        f"{name} is not valid UTF-8 (byte 0x{byte:02x} on line {line}): "
                        "export it as CSV UTF-8"
                    )
                yield line, fields
    except csv.Error as exc:
        raise ImportRefused(
            f"{name} is not a readable CSV file (line {previous_line}): {exc}"
        ) from None
    except UnicodeDecodeError as exc:
        # UTF-16 has no surrogate escape for a file cut mid-character.
        raise ImportRefused(
            f"{name} is not valid {exc.encoding.upper()} after line {previous_line} "
            f"({exc.reason}): export it as CSV UTF-8"
        ) from None


# --- the import ---------------------------------------------------------------------------


@dataclass
class _Person:
    """A contact as this import sees it: from the database or new in this chunk."""

    id: int | None
    values: dict[str, Any]
    existing: bool
    dirty: bool = False
    consent_changes: list[tuple[str, str, str, BookRow]] = field(default_factory=list)


_CONTACT_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "name_zip_key",
    "property_state",
    "property_zip",
    "lo_id",
    "sms_consent",
    "email_consent",
)
_LOAN_COMPARED = (
    "status",
    "purpose",
    "program",
    "program_name",
    "is_arm",
    "term_months",
    "note_rate",
    "loan_amount_cents",
    "property_value_cents",
    "property_state",
    "property_zip",
    "application_date",
    "funded_date",
    "fallout_date",
    "first_payment_date",
    "arm_first_adjustment_date",
    "custom_fields",
    "lo_id",
)


def merge_consent(current: str, incoming: str) -> str:
    """Unknown never overrides knowledge; otherwise the most restrictive state wins."""
    if incoming == UNKNOWN:
        return current
    if current == UNKNOWN:
        return incoming
    return incoming if CONSENT_RANK[incoming] > CONSENT_RANK[current] else current


class _BookImport:
    """One run of the importer over one file."""

    def __init__(self, session: Session, now: datetime, source: str, actor: str) -> None:
        self.session = session
        self.now = now
        self.today = now.date()
        self.source = source
        self.actor = actor
        self.result = ImportResult()
        self.officers_by_email: dict[str, int] = {}
        self.officers_by_name: dict[str, int] = {}
        for officer_id, email, name in session.execute(
            select(LoanOfficer.id, LoanOfficer.email, LoanOfficer.name)
        ):
            self.officers_by_email[email] = officer_id
            self.officers_by_name.setdefault(squash(name), officer_id)
        self.unknown_officer_names: set[str] = set()

    # -- loan officers

    def officer_for(self, row: BookRow) -> int | None:
        if row.lo_email:
            officer_id = self.officers_by_email.get(row.lo_email)
            if officer_id is None:
                name = row.lo_name or row.lo_email.split("@")[0]
                officer_id = self.session.execute(
                    insert(LoanOfficer).returning(LoanOfficer.id),
                    {
                        "email": row.lo_email,
                        "name": name[:200],
                        "created_at": self.now,
                        "updated_at": self.now,
                    },
                ).scalar_one()
                self.officers_by_email[row.lo_email] = officer_id
                self.officers_by_name.setdefault(squash(name), officer_id)
                self.result.los_created += 1
            return officer_id
        if row.lo_name:
            officer_id = self.officers_by_name.get(squash(row.lo_name))
            if officer_id is None and row.lo_name not in self.unknown_officer_names:
                self.unknown_officer_names.add(row.lo_name)
                self.result.warn(
                    f"loan officer '{row.lo_name}' has no email in the file and is not known: "
                    "add them with `winback lo add`"
                )
            return officer_id
        return None

    # -- people

    def load_people(self, rows: list[BookRow]) -> dict[tuple[str, str], _Person]:
        emails = {row.email for row in rows if row.email}
        phones = {row.phone for row in rows if row.phone}
        keys = {row.name_zip_key for row in rows if row.name_zip_key}
        conditions = []
        if emails:
            conditions.append(any_of(self.session, Contact.email, emails))
        if phones:
            conditions.append(any_of(self.session, Contact.phone, phones))
        if keys:
            conditions.append(any_of(self.session, Contact.name_zip_key, keys))
        index: dict[tuple[str, str], _Person] = {}
        if not conditions:
            return index
        columns = [getattr(Contact, name) for name in _CONTACT_COLUMNS]
        # Oldest first, so when two people share a key the earlier one keeps it.
        for found in self.session.execute(
            select(*columns).where(or_(*conditions)).order_by(Contact.id.desc())
        ):
            values = dict(zip(_CONTACT_COLUMNS, found, strict=True))
            person = _Person(id=values["id"], values=values, existing=True)
            self.index_person(index, person)
        return index

    @staticmethod
    def index_person(index: dict[tuple[str, str], _Person], person: _Person) -> None:
        for kind in ("email", "phone", "name_zip_key"):
            if person.values.get(kind):
                index[(kind, person.values[kind])] = person

    def resolve(self, index: dict[tuple[str, str], _Person], row: BookRow) -> _Person:
        for kind, key in (
            ("email", row.email),
            ("phone", row.phone),
            ("name_zip_key", row.name_zip_key),
        ):
            person = index.get((kind, key)) if key else None
            if person is None or self.conflicts(person, row, kind):
                continue
            self.result.duplicates_merged += 1
            self.merge_person(person, row)
            self.index_person(index, person)
            return person
        person = _Person(
            id=None,
            existing=False,
            values={
                "first_name": row.first_name,
                "last_name": row.last_name,
                "email": row.email,
                "phone": row.phone,
                "name_zip_key": row.name_zip_key,
                "property_state": row.property_state,
                "property_zip": row.property_zip,
                "lo_id": None,
                "sms_consent": UNKNOWN,
                "email_consent": UNKNOWN,
            },
        )
        self.merge_consent(person, row)
        self.index_person(index, person)
        return person

    @staticmethod
    def conflicts(person: _Person, row: BookRow, matched_on: str) -> bool:
        """A weaker match is void when a stronger key differs (spouses share a home phone)."""
        stronger = {"email": (), "phone": ("email",), "name_zip_key": ("email", "phone")}
        return any(
            getattr(row, kind)
            and person.values.get(kind)
            and getattr(row, kind) != person.values[kind]
            for kind in stronger[matched_on]
        )

    def merge_person(self, person: _Person, row: BookRow) -> None:
        values = person.values
        updates: dict[str, Any] = {}
        # Identity keys are only filled in, never replaced: rows of old loans carry old data.
        for name in ("email", "phone"):
            if getattr(row, name) and not values.get(name):
                updates[name] = getattr(row, name)
        for name in ("first_name", "last_name", "property_state", "property_zip"):
            if getattr(row, name) and not values.get(name):
                updates[name] = getattr(row, name)
        if updates.get("first_name") or updates.get("last_name") or updates.get("property_zip"):
            first = updates.get("first_name", values["first_name"])
            last = updates.get("last_name", values["last_name"])
            zip5 = updates.get("property_zip", values["property_zip"])
            if first and last and zip5 and not values.get("name_zip_key"):
                updates["name_zip_key"] = f"{first}|{last}|{zip5}".lower()
        if updates:
            values.update(updates)
            person.dirty = True
        self.merge_consent(person, row)

    def merge_consent(self, person: _Person, row: BookRow) -> None:
        for channel, incoming in (("sms", row.sms_consent), ("email", row.email_consent)):
            current = person.values[f"{channel}_consent"]
            merged = merge_consent(current, incoming)
            if merged != current:
                person.values[f"{channel}_consent"] = merged
                person.consent_changes.append((channel, current, merged, row))
                person.dirty = True

    # -- writing one chunk

    def write_chunk(self, rows: list[BookRow]) -> None:
        index = self.load_people(rows)
        people: list[tuple[BookRow, _Person, int | None]] = []
        for row in rows:
            officer_id = self.officer_for(row)
            person = self.resolve(index, row)
            if officer_id is not None and person.values.get("lo_id") != officer_id:
                person.values["lo_id"] = officer_id
                person.dirty = True
            people.append((row, person, officer_id))
        self.write_people({id(person): person for _, person, _ in people}.values())
        self.write_loans(people)

    def write_people(self, people: Any) -> None:
        new = [person for person in people if not person.existing]
        changed = [person for person in people if person.existing and person.dirty]
        if new:
            payload = [
                {
                    **{k: v for k, v in person.values.items() if k != "id"},
                    **self.consent_stamps(person),
                    "created_at": self.now,
                    "updated_at": self.now,
                }
                for person in new
            ]
            ids = allocate_ids(self.session, Contact.__table__, len(new))
            for person, row, new_id in zip(new, payload, ids, strict=True):
                person.id = row["id"] = new_id
            bulk_insert(self.session, Contact.__table__, payload)
            self.result.contacts_created += len(new)
        if changed:
            self.session.execute(
                update(Contact),
                [
                    {**person.values, **self.consent_stamps(person), "updated_at": self.now}
                    for person in changed
                ],
            )
            self.result.contacts_updated += len(changed)
        events = [
            {
                "contact_id": person.id,
                "channel": channel,
                "old_state": old,
                "new_state": new_state,
                "source": self.source,
                "evidence": f"line {row.line}",
                "actor": self.actor,
                "consent_text_version": None,
                "at": self.now,
            }
            for person in (*new, *changed)
            for channel, old, new_state, row in person.consent_changes
        ]
        if events:
            bulk_insert(self.session, ConsentEvent.__table__, events)
        for person in (*new, *changed):
            person.existing, person.dirty, person.consent_changes = True, False, []

    def consent_stamps(self, person: _Person) -> dict[str, Any]:
        stamps: dict[str, Any] = {}
        if not person.existing:  # a bulk INSERT needs the same keys in every row
            stamps = dict.fromkeys(
                ("sms_consent_at", "sms_consent_source", "email_consent_at", "email_consent_source")
            )
            stamps["phone_status"] = "ok"
        for channel, _old, _new, row in person.consent_changes:
            at = (
                datetime.combine(row.consent_date, time(12), tzinfo=UTC)
                if row.consent_date
                else self.now
            )
            stamps[f"{channel}_consent_at"] = at
            stamps[f"{channel}_consent_source"] = f"{self.source} line {row.line}"[:300]
        return stamps

    def write_loans(self, people: list[tuple[BookRow, _Person, int | None]]) -> None:
        wanted: dict[str, dict[str, Any]] = {}
        for row, person, officer_id in people:
            loan = {**row.loan, "contact_id": person.id, "lo_id": officer_id}
            wanted[loan["loan_number"]] = loan  # a later row for the same loan wins
        columns = [Loan.id, Loan.loan_number, *(getattr(Loan, name) for name in _LOAN_COMPARED)]
        existing = {
            found.loan_number: found
            for found in self.session.execute(
                select(*columns).where(any_of(self.session, Loan.loan_number, wanted.keys()))
            )
        }
        inserts, updates = [], []
        existing_by_id = {
            found.id: wanted[number]["contact_id"] for number, found in existing.items()
        }
        for number, loan in wanted.items():
            found = existing.get(number)
            if found is None:
                inserts.append({**loan, "created_at": self.now, "updated_at": self.now})
                continue
            changes = {
                name: loan[name]
                for name in _LOAN_COMPARED
                if loan[name] != getattr(found, name)
                and not (name == "lo_id" and loan[name] is None)
            }
            if changes:
                updates.append(
                    {"id": found.id, **changes, "updated_at": self.now, "source": loan["source"]}
                )
        if inserts:
            bulk_insert(self.session, Loan.__table__, inserts)
            self.result.loans_created += len(inserts)
        funded_now = {loan["contact_id"] for loan in inserts if loan["status"] == FUNDED}
        for change in updates:
            if change.get("status") == FUNDED:
                funded_now.add(existing_by_id[change["id"]])
            # Rows differ in which columns changed, so each is its own UPDATE.
            self.session.execute(update(Loan).where(Loan.id == change.pop("id")).values(**change))
        self.result.loans_updated += len(updates)
        self.result.newly_funded |= funded_now  # flows end their sequences


def import_book(
    *,
    session: Session,
    stream: BinaryIO,
    name: str,
    fmt: str = "auto",
    now: datetime,
    actor: str = "cli",
    rejects: TextIO | None = None,
    on_bytes: Callable[[int], None] | None = None,
    size_hint: int = 0,
) -> ImportResult:
    """Import one export from `stream` inside the caller's transaction; see the module doc."""
    head = stream.read(65536)
    encoding, delimiter = _sniff(head, name)
    raw = io.BufferedReader(_CountingReader(_Prepend(head, stream), on_bytes))
    text = io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="")
    records = _records(text, delimiter, name)
    try:
        _, headers = next(records)
    except StopIteration:
        raise ImportRefused(f"{name} is empty") from None
    try:
        header_map = choose_preset(headers, fmt)
    except MappingError as exc:
        raise ImportRefused(str(exc)) from None
    _check_header(header_map, headers, name)

    run = _BookImport(session, now, source=f"import:{Path(name).name}", actor=actor)
    result = run.result
    result.format = header_map.preset.name
    for header in header_map.unmapped:
        result.warn(f"column '{header}' matches no field: kept as a custom field")
    reject_writer = _rejects_writer(rejects, headers)
    job = ParseJob(headers=headers, header_map=header_map, today=run.today, source=run.source)
    for parsed in parsed_chunks(records, job, size_hint=size_hint):
        rows: list[BookRow] = []
        for item in parsed:
            result.rows += 1
            if isinstance(item, Rejection):
                result.rejected += 1
                if reject_writer:
                    cells = item.fields[: len(headers)]
                    padding = [""] * (len(headers) - len(cells))
                    reject_writer.writerow([*cells, *padding, item.line, item.reason])
                continue
            for message in item.warnings:
                result.warn(message)
            rows.append(item)
        if rows:
            run.write_chunk(rows)
    record(
        session=session,
        at=now,
        actor=actor,
        action="book.imported",
        subject_type="file",
        subject_id=Path(name).name[:64],
        details=result.as_json(),
    )
    return result


class _Prepend(io.RawIOBase):
    """The already-read head of a stream followed by the rest of it."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._head:
            data, self._head = (
                (self._head, b"")
                if size < 0 or size >= len(self._head)
                else (self._head[:size], self._head[size:])
            )
            return data
        return self._rest.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _check_header(header_map: HeaderMap, headers: list[str], name: str) -> None:
    if not header_map.columns:
        shown = ", ".join(header.strip() for header in headers[:6])
        raise ImportRefused(
            f"{name} has no recognizable header: none of its columns ({shown}) match the "
            "generic or encompass formats (use --format MAPPING.yml)"
        )
    fields = header_map.fields
    if not fields & {"email", "phone", "phone_home"}:
        raise ImportRefused(f"{name} has no email or phone column: every person needs one")
    if "loan_status" not in fields and not header_map.preset.blank_status:
        raise ImportRefused(f"{name} has no loan_status column")


def _rejects_writer(rejects: TextIO | None, headers: list[str]) -> Any:
    if rejects is None:
        return None
    writer = csv.writer(rejects)
    writer.writerow([*headers, "line", "reason"])
    return writer


def import_file(*, session: Session, path: Path, **kwargs: Any) -> ImportResult:
    """Import the file at `path` (see import_book)."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise ImportRefused(f"cannot read {path}: {exc.strerror}") from None
    with stream:
        size = os.fstat(stream.fileno()).st_size
        return import_book(session=session, stream=stream, name=str(path), size_hint=size, **kwargs)
