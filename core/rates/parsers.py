"""Pure parsers for market-rate payloads: FRED JSON and CSV, Freddie Mac PMMS, rate sheets.

Every parser takes the raw text (or bytes) and returns `Observation`s, or raises `FeedError`
with one line naming the source and what was wrong. Wire formats: shared/data/formats.md.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.book.normalize import CellError
from core.book.normalize import parse_rate as parse_note_rate

log = logging.getLogger(__name__)

PRODUCTS = ("30y", "15y")
SERIES_PRODUCTS = {"MORTGAGE30US": "30y", "MORTGAGE15US": "15y"}
PRODUCT_SERIES = {product: series for series, product in SERIES_PRODUCTS.items()}

# A plausible mortgage rate, in percent (SPEC §4); anything else is a typo or a feed defect.
LOWEST_RATE = Decimal(1)
HIGHEST_RATE = Decimal(20)

_MISSING = {"", "."}
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_PRODUCT_ALIASES = {
    "30y": "30y",
    "30yr": "30y",
    "30year": "30y",
    "30": "30y",
    "15y": "15y",
    "15yr": "15y",
    "15year": "15y",
    "15": "15y",
}


@dataclass(frozen=True)
class Observation:
    """One published market rate: the average rate for a product on a survey date."""

    on: date
    product: str  # '30y' | '15y'
    rate: Decimal  # percent, e.g. Decimal("6.125")
    source: str


class FeedError(Exception):
    """A rate feed or file could not be read; the message is one line naming where and why."""

    def __init__(self, reason: str, *, where: str) -> None:
        self.reason = " ".join(reason.split())
        self.where = " ".join(where.split())
        super().__init__(f"{self.where}: {self.reason}")


class EmptySeriesError(FeedError):
    """The payload was well formed but held no usable rate at all."""


class RateError(ValueError):
    """A market rate that cannot be recorded (not a rate, implausible, wrong product, future)."""


def parse_rate(text: str) -> Decimal:
    """A rate in percent from `6.5`, `6.500%`, ` 6.5 % ` or the fraction `0.065`; 1-20 % only."""
    # One reading everywhere: the importer's note-rate parser decides what the text means
    # (0.065 is a fraction, 6.5 and 6.5% are percent), and the plausible band is checked here.
    try:
        rate = parse_note_rate(text)
    except CellError:
        rate = None
    if rate is None or not LOWEST_RATE <= rate <= HIGHEST_RATE:
        raise RateError(
            f"{_clip(text.strip())} is not a rate from {LOWEST_RATE} to {HIGHEST_RATE} %"
        )
    return rate


@dataclass(frozen=True)
class FredPage:
    """One page of a FRED API answer: its usable observations and the paging counters."""

    observations: list[Observation]
    returned: int  # rows on this page, missing values included
    count: int  # rows matching the request in total, across pages


# ---------------------------------------------------------------------------------------------
# Small shared pieces


def _text(payload: str | bytes, source: str) -> str:
    """The payload as text, without a byte-order mark; HTML or XML pages are refused."""
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FeedError("the payload is not UTF-8 text", where=source) from exc
    text = payload.removeprefix("\ufeff")
    head = text[:512].lstrip().lower()
    if head.startswith("<"):
        # FRED answers XML without file_type=json; proxies and outages answer HTML.
        kind = "an HTML page" if "html" in head else "markup (XML?)"
        raise FeedError(f"got {kind} instead of rate data", where=source)
    return text


def _clip(value: object) -> str:
    """A short printable rendering of a bad value for an error message."""
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _date(value: object, source: str, at: str) -> date:
    """An ISO `YYYY-MM-DD` or Freddie Mac `M/D/YYYY` date."""
    text = value.strip() if isinstance(value, str) else ""
    iso = _ISO_DATE.fullmatch(text)
    us = _US_DATE.fullmatch(text)
    try:
        if iso:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        if us:
            return date(int(us[3]), int(us[1]), int(us[2]))
    except ValueError:
        pass
    raise FeedError(f"{at}: {_clip(value)} is not a date", where=source)


def _rate_text(value: object, source: str, at: str) -> str | None:
    """A rate cell as text for `parse_rate`, or None when the source marks it missing."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FeedError(f"{at}: rate {_clip(value)} is not a number", where=source)
    if isinstance(value, float):
        # repr is the shortest round-trip form, so 6.125 stays "6.125", not 6.12499999...
        return repr(value)
    text = value.strip() if isinstance(value, str) else str(value)
    return None if text in _MISSING else text


def _observe(on: date, product: str, text: str | None, source: str, at: str) -> Observation | None:
    """An observation, or None when the rate is missing or refused (the latter is logged)."""
    if text is None:
        return None
    try:
        rate = parse_rate(text)
    except RateError as exc:
        log.warning("%s: %s: rejected %s rate for %s: %s", source, at, product, on.isoformat(), exc)
        return None
    return Observation(on=on, product=product, rate=rate, source=source)


def _non_empty(observations: list[Observation], source: str) -> list[Observation]:
    """The observations, or EmptySeriesError when there are none."""
    if not observations:
        raise EmptySeriesError("no rates in the series (empty or all values missing)", where=source)
    return observations


def _product(value: object, source: str, at: str) -> str | None:
    """'30y' or '15y' from a rate-sheet product label; None (logged) for other products."""
    label = re.sub(r"[^0-9a-z]", "", value.lower()) if isinstance(value, str) else ""
    label = label.removesuffix("fixed").removesuffix("fix").removesuffix("frm")
    product = _PRODUCT_ALIASES.get(label)
    if product is None:
        log.warning("%s: %s: skipped product %s (only 30y and 15y)", source, at, _clip(value))
    return product


# ---------------------------------------------------------------------------------------------
# FRED API JSON


def _load_json(text: str, source: str) -> Any:
    """Decoded JSON; NaN/Infinity and malformed text are refused."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not allowed")

    try:
        return json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:
        raise FeedError("the payload is not valid JSON", where=source) from exc


def _fred_error(envelope: dict[str, Any], source: str) -> None:
    """Raise FeedError when a FRED envelope carries `error_code` instead of observations."""
    if "error_code" in envelope:
        message = envelope.get("error_message") or "no message"
        raise FeedError(f"FRED error {envelope['error_code']}: {message}", where=source)


def read_fred_page(payload: str | bytes, *, product: str, source: str) -> FredPage:
    """One page of a FRED `series/observations` JSON answer (no emptiness check)."""
    envelope = _load_json(_text(payload, source), source)
    if not isinstance(envelope, dict):
        raise FeedError("expected a FRED JSON object", where=source)
    _fred_error(envelope, source)
    rows = envelope.get("observations")
    if not isinstance(rows, list):
        raise FeedError("no 'observations' list in the FRED answer", where=source)
    count = envelope.get("count", len(rows))
    if isinstance(count, bool) or not isinstance(count, int):
        raise FeedError(f"'count' {_clip(count)} is not a number", where=source)
    found: list[Observation] = []
    for index, row in enumerate(rows):
        at = f"observation {index}"
        if not isinstance(row, dict):
            raise FeedError(f"{at} is not an object", where=source)
        on = _date(row.get("date"), source, at)
        observation = _observe(on, product, _rate_text(row.get("value"), source, at), source, at)
        if observation:
            found.append(observation)
    return FredPage(observations=found, returned=len(rows), count=count)


def parse_fred_json(payload: str | bytes, *, product: str, source: str) -> list[Observation]:
    """Rates from a FRED API `series/observations` answer (file_type=json)."""
    page = read_fred_page(payload, product=product, source=source)
    return _non_empty(page.observations, source)


# ---------------------------------------------------------------------------------------------
# CSV formats


def _rows(text: str, source: str) -> list[list[str]]:
    """CSV rows with any line ending, quoted or not; blank lines dropped."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise FeedError(f"unreadable CSV ({exc})", where=source) from exc
    rows = [row for row in rows if any(field.strip() for field in row)]
    if not rows:
        raise EmptySeriesError("the CSV is empty", where=source)
    return rows


def _header(row: list[str]) -> list[str]:
    """Header names, stripped and lower-cased for matching."""
    return [name.strip().lower() for name in row]


def _field(row: list[str], index: int) -> str:
    """A field, or "" when a short row stops before it (Freddie Mac's 4-field rows)."""
    return row[index] if index < len(row) else ""


def _columns(header: list[str], names: Iterable[str], source: str) -> dict[str, int]:
    """Positions of the named columns; FeedError naming the first one missing."""
    positions = {}
    for name in names:
        if name not in header:
            raise FeedError(f"the CSV header has no '{name}' column", where=source)
        positions[name] = header.index(name)
    return positions


def _wide_rows(
    rows: list[list[str]], columns: dict[int, str], source: str
) -> Iterator[Observation]:
    """Observations from rows of `date, <rate column>...`, one product per rate column."""
    for line, row in enumerate(rows[1:], start=2):
        at = f"line {line}"
        rates = {
            product: _rate_text(_field(row, index), source, at)
            for index, product in columns.items()
        }
        if all(rate is None for rate in rates.values()):
            continue  # e.g. Freddie Mac's newest week published before its rates
        on = _date(row[0], source, at)
        for product, rate in rates.items():
            observation = _observe(on, product, rate, source, at)
            if observation:
                yield observation


def _fredgraph_columns(rows: list[list[str]], source: str) -> dict[int, str]:
    """Rate columns of a fredgraph CSV, each a known mortgage series; FeedError otherwise."""
    header = [name.strip() for name in rows[0]]
    if header[0].lower() not in ("observation_date", "date") or len(header) < 2:
        raise FeedError("expected a fredgraph header 'observation_date,<SERIES>'", where=source)
    columns = {}
    for index, series in enumerate(header[1:], start=1):
        if series.upper() not in SERIES_PRODUCTS:
            known = " or ".join(SERIES_PRODUCTS)
            raise FeedError(f"series column {_clip(series)} is not {known}", where=source)
        columns[index] = SERIES_PRODUCTS[series.upper()]
    return columns


def parse_fredgraph_csv(
    payload: str | bytes, *, product: str, series_id: str, source: str
) -> list[Observation]:
    """Rates from FRED's keyless `fredgraph.csv` (header `observation_date` or legacy `DATE`)."""
    rows = _rows(_text(payload, source), source)
    header = [name.strip() for name in rows[0]]
    if len(header) != 2 or header[0].lower() not in ("observation_date", "date"):
        raise FeedError(f"expected the header 'observation_date,{series_id}'", where=source)
    if header[1].upper() != series_id.upper():
        raise FeedError(
            f"series column is {_clip(header[1])}, expected {_clip(series_id)}", where=source
        )
    return _non_empty(list(_wide_rows(rows, {1: product}, source)), source)


def _parse_freddie_rows(rows: list[list[str]], source: str) -> list[Observation]:
    """Observations from Freddie Mac PMMS rows (header row first)."""
    positions = _columns(_header(rows[0]), ("date", "pmms30", "pmms15"), source)
    if positions["date"] != 0:
        raise FeedError("the 'date' column must come first", where=source)
    columns = {positions["pmms30"]: "30y", positions["pmms15"]: "15y"}
    return _non_empty(list(_wide_rows(rows, columns, source)), source)


def parse_freddie_pmms_csv(payload: str | bytes, *, source: str) -> list[Observation]:
    """30y and 15y rates from Freddie Mac's `PMMS_history.csv` (quoted or not, 4 or 9 fields)."""
    return _parse_freddie_rows(_rows(_text(payload, source), source), source)


def _parse_history_rows(rows: list[list[str]], source: str) -> list[Observation]:
    """Observations from `date,rate_30y,rate_15y` rows (header row first)."""
    positions = _columns(_header(rows[0]), ("date", "rate_30y", "rate_15y"), source)
    if positions["date"] != 0:
        raise FeedError("the 'date' column must come first", where=source)
    columns = {positions["rate_30y"]: "30y", positions["rate_15y"]: "15y"}
    return _non_empty(list(_wide_rows(rows, columns, source)), source)


def parse_history_csv(payload: str | bytes, *, source: str) -> list[Observation]:
    """30y and 15y rates from the bundled history format `date,rate_30y,rate_15y`."""
    return _parse_history_rows(_rows(_text(payload, source), source), source)


def _parse_long_rows(rows: list[list[str]], source: str) -> list[Observation]:
    """Observations from `date,product,rate` rows (header row first)."""
    positions = _columns(_header(rows[0]), ("date", "product", "rate"), source)
    found = []
    for line, row in enumerate(rows[1:], start=2):
        at = f"line {line}"
        rate = _rate_text(_field(row, positions["rate"]), source, at)
        product = _product(_field(row, positions["product"]), source, at)
        if rate is None or product is None:
            continue
        on = _date(_field(row, positions["date"]), source, at)
        observation = _observe(on, product, rate, source, at)
        if observation:
            found.append(observation)
    return _non_empty(found, source)


def _parse_fredgraph_rows(rows: list[list[str]], source: str) -> list[Observation]:
    """Observations from a fredgraph CSV naming MORTGAGE30US and/or MORTGAGE15US columns."""
    columns = _fredgraph_columns(rows, source)
    return _non_empty(list(_wide_rows(rows, columns, source)), source)


def _csv_parser(
    header: list[str], source: str
) -> Callable[[list[list[str]], str], list[Observation]]:
    """Which CSV format this header belongs to, by its column names."""
    if "product" in header and "rate" in header:
        return _parse_long_rows
    if "rate_30y" in header or "rate_15y" in header:
        return _parse_history_rows
    if "pmms30" in header:
        return _parse_freddie_rows
    if header and header[0] in ("observation_date", "date"):
        return _parse_fredgraph_rows
    raise FeedError(f"unrecognised CSV header {_clip(','.join(header))}", where=source)


def parse_any_csv(payload: str | bytes, *, source: str) -> list[Observation]:
    """Rates from any supported CSV, recognised by its header row."""
    rows = _rows(_text(payload, source), source)
    return _csv_parser(_header(rows[0]), source)(rows, source)


# ---------------------------------------------------------------------------------------------
# A broker's own rate sheet and history files


def _parse_rate_list(entries: list[Any], source: str) -> list[Observation]:
    """Observations from `[{"date", "product", "rate"}, ...]`."""
    found = []
    for index, entry in enumerate(entries):
        at = f"rate {index}"
        if not isinstance(entry, dict):
            raise FeedError(f"{at} is not an object", where=source)
        rate = _rate_text(entry.get("rate"), source, at)
        product = _product(entry.get("product"), source, at)
        if rate is None or product is None:
            continue
        observation = _observe(_date(entry.get("date"), source, at), product, rate, source, at)
        if observation:
            found.append(observation)
    return _non_empty(found, source)


def _parse_rate_sheet_json(text: str, *, product: str, source: str) -> list[Observation]:
    """A JSON rate sheet: FRED envelope, `{"rates": [...]}` or a bare list of rates."""
    document = _load_json(text, source)
    if isinstance(document, list):
        return _parse_rate_list(document, source)
    if isinstance(document, dict) and isinstance(document.get("rates"), list):
        return _parse_rate_list(document["rates"], source)
    if isinstance(document, dict) and ("observations" in document or "error_code" in document):
        return parse_fred_json(text, product=product, source=source)
    raise FeedError("JSON has neither 'rates' nor FRED 'observations'", where=source)


def parse_rate_sheet(
    payload: str | bytes, *, content_type: str | None, source: str, product: str = "30y"
) -> list[Observation]:
    """Rates from a broker's daily rate sheet (JSON or CSV), told apart by type and content.

    `product` names the rates of a single-series FRED-style JSON envelope, which does not say.
    """
    text = _text(payload, source)
    kind = (content_type or "").lower()
    if "html" in kind:
        raise FeedError(f"got an HTML page ({content_type}) instead of rate data", where=source)
    if text.lstrip()[:1] in ("{", "[") or "json" in kind:
        return _parse_rate_sheet_json(text, product=product, source=source)
    return parse_any_csv(text, source=source)


def load_history_file(path: str | Path, *, source: str | None = None) -> list[Observation]:
    """Rates from a history CSV on disk (bundled, Freddie Mac, fredgraph or date,product,rate)."""
    path = Path(path)
    where = str(path)
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise FeedError(f"cannot read the file ({exc.strerror or exc})", where=where) from exc
    observations = parse_any_csv(payload, source=where)
    if source is None:
        return observations
    return [
        Observation(on=item.on, product=item.product, rate=item.rate, source=source)
        for item in observations
    ]
