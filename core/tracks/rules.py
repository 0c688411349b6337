"""The text rules of the template lint: figures, the blocklist, internal wording, rates and
their APRs, trigger terms and their disclosures, the email footer (rules in core.tracks.lint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.tracks.html_text import Prominence, _Styled

# --- text rules -----------------------------------------------------------------------------

_URL = re.compile(r"https?://\S+|www\.\S+", re.I)
_NMLS = re.compile(r"\bNMLS\s*(?:ID\s*)?#?:?\s*\d+", re.I)
_MONEY_WORD = (
    r"(?:payments?|rates?|interest|save|savings?|saving|down|points?|fees?|costs?|term"
    r"|months?|mos?|monthly)"
)
_FIGURES = [
    ("a percent figure", re.compile(r"%|\bpercent\b", re.I)),
    ("a dollar amount", re.compile(r"\$|\bdollars?\b|\bUSD\b|\b\d+(?:\.\d+)?\s?k\b", re.I)),
    ("the term APR", re.compile(r"\bAPR\b", re.I)),
    ("a number with a decimal point or thousands separator", re.compile(r"\d[.,]\d")),
    (
        "a loan term",
        re.compile(
            r"\b\d+\s*-?\s*(?:years?|yrs?)\b[\s-]*(?:fixed|term|loan|mortgage|arm|amortization"
            r"|note)\b|\b\d+/\d+\s*arm\b",
            re.I,
        ),
    ),
    (
        "a number next to a payment, rate or money word",
        re.compile(rf"\b\d+\W+(?:\w+\W+)?{_MONEY_WORD}\b|\b{_MONEY_WORD}\W+(?:\w+\W+)?\d", re.I),
    ),
]
_BLOCKLIST = [
    ("pre-approved", re.compile(r"\bpre[-\s]?approved\b", re.I)),
    ("guaranteed", re.compile(r"\bguarantee[ds]?\b", re.I)),
    ("VA approved", re.compile(r"\bVA[-\s]approved\b", re.I)),
    ("FHA approved", re.compile(r"\bFHA[-\s]approved\b", re.I)),
    (
        "approved",
        re.compile(r"(?<!pre-)(?<!pre )(?<!\bVA )(?<!VA-)(?<!FHA )(?<!FHA-)\bapproved\b", re.I),
    ),
    ("government program", re.compile(r"\bgovernment[-\s]+(?:\w+\s+)?programs?\b", re.I)),
    ("lowest rate", re.compile(r"\blowest\s+(?:\w+\s+)?rates?\b", re.I)),
    (
        "government or official notice",
        re.compile(
            r"\bgovernment\b|\bfederal program\b|\bstimulus\b|\b(?:official|final) notice\b"
            r"|\bHUD\b|\bDepartment of (?:Housing|Veterans)",
            re.I,
        ),
    ),
]
_NO_COST = re.compile(r"\bno[-\s](?:closing[-\s])?costs?\b", re.I)
# Other lenders' names never appear in our copy (Reg N); whole words, any case.
# fmt: off
OTHER_LENDERS = (
    "Rocket Mortgage", "Rocket Companies", "Quicken Loans", "United Wholesale Mortgage", "UWM",
    "Wells Fargo", "Chase", "JPMorgan", "loanDepot", "Guild Mortgage", "Guild", "Bank of America",
    "Fairway Independent", "Mr. Cooper", "PennyMac", "Freedom Mortgage", "CrossCountry Mortgage",
    "Better.com", "Better Mortgage", "Movement Mortgage", "Guaranteed Rate", "Caliber Home Loans",
    "NewRez", "Citibank", "Citi", "U.S. Bank", "US Bank", "Truist", "Navy Federal", "Flagstar",
    "Veterans United", "PNC", "SoFi", "Ally Bank",
)
# fmt: on
_LENDERS = re.compile(
    r"(?<!\w)(" + "|".join(re.escape(name) for name in OTHER_LENDERS) + r")(?!\w)", re.I
)


# The batch's rate description (core/rates/service.py Offer.describe()) and the snapshot's field
# names: right for a batch card or a call task, meaningless or misleading to a borrower. Each
# pattern is one a borrower-facing sentence has no reason to use.
_INTERNAL_WORDING = [
    ("the broker's offset", re.compile(r"\boffsets?\b", re.I)),
    ("'set manually'", re.compile(r"\bset manually\b", re.I)),
    ("the index's name", re.compile(r"\bPMMS\b|\bFRED\b|\bindex(?:es)?\b", re.I)),
    (
        "a snapshot field name",
        re.compile(r"\b(?:rate_source|offer_rate|index_rate|rate_as_of|rate_product)\b", re.I),
    ),
    ("rate arithmetic", re.compile(r"[\d)]%?\s+[-+\u2212]\s+\d|(?<![=<>!])=(?!=)", re.I)),
    ("an ISO date", re.compile(r"\b\d{4}-\d{2}-\d{2}\b")),
]


def internal_wording(text: str) -> list[str]:
    """Each kind of internal rate wording (describe() text, field names) in borrower text."""
    bare = _URL.sub(" ", text)
    return [
        f"{label} ({match.group(0).strip()!r})"
        for label, pattern in _INTERNAL_WORDING
        if (match := pattern.search(bare))
    ]


def figures_in(text: str) -> list[str]:
    """Each kind of figure (rate, payment, amount, term) an SMS or subject must not carry."""
    bare = _NMLS.sub(" ", _URL.sub(" ", text))
    found = []
    for label, pattern in _FIGURES:
        match = pattern.search(bare)
        if match:
            found.append(f"{label} ({match.group(0).strip()!r})")
    return found


def blocked_phrases(text: str, *, no_cost_allowed: bool = False) -> list[tuple[str, str]]:
    """(rule, message) for each blocklisted phrase or other lender's name in a text."""
    problems = []
    for label, pattern in _BLOCKLIST:
        match = pattern.search(text)
        if match:
            problems.append(("blocklist", f"uses {label!r} ({match.group(0)!r})"))
    if not no_cost_allowed and (match := _NO_COST.search(text)):
        problems.append(("no_cost", f"claims {match.group(0)!r} (not enabled by configuration)"))
    if match := _LENDERS.search(text):
        problems.append(("other_lender", f"names another lender ({match.group(0)!r})"))
    return problems


# --- rates and their APRs ------------------------------------------------------------------

_PERCENT = re.compile(r"\d+(?:\.\d+)?\s*(?:%|percent\b)", re.I)
_LABEL_AFTER = re.compile(r"\s*[(,]?\s*(APR|annual percentage rate|LTV|loan-to-value|down)\b", re.I)
_LABEL_BEFORE = re.compile(
    r"\b(APR|annual percentage rate|LTV|loan-to-value)\s*(?:of|is|:|=)?\s*$", re.I
)


@dataclass(frozen=True)
class _Percent:
    """One percentage in a text: what it is, as written, how it looks, where it is."""

    kind: str  # "apr", "rate" or "other"
    figure: str
    prominence: Prominence
    position: int


def _classify_percents(styled: _Styled) -> list[_Percent]:
    """Every percentage in the text, told apart as an APR, a stated rate or something else."""
    found = []
    text = styled.text
    for match in _PERCENT.finditer(text):
        label = _LABEL_AFTER.match(text, match.end())
        label_start = label.start(1) if label else -1
        if not label:
            label = _LABEL_BEFORE.search(text[max(0, match.start() - 40) : match.start()])
            label_start = max(0, match.start() - 40) + label.start(1) if label else -1
        prominence = styled.at(match.start())
        if not label:
            found.append(_Percent("rate", match.group(0), prominence, match.start()))
        elif label.group(1).lower() in ("apr", "annual percentage rate"):
            label_look = styled.at(label_start)
            weakest = Prominence(
                min(prominence.size, label_look.size), min(prominence.weight, label_look.weight)
            )
            found.append(_Percent("apr", match.group(0), weakest, match.start()))
        else:
            found.append(_Percent("other", match.group(0), prominence, match.start()))
    return found


def rate_problems(styled: _Styled, *, html: bool) -> list[tuple[str, str]]:
    """A stated rate without an APR beside it (text) or with a less prominent APR (HTML)."""
    problems = []
    percents = _classify_percents(styled)
    paragraphs = [m.span() for m in re.finditer(r"(?:[^\n]|\n(?!\s*\n))+", styled.text)]
    for rate in (p for p in percents if p.kind == "rate"):
        aprs = [p for p in percents if p.kind == "apr"]
        if not html:
            para = next((s, e) for s, e in paragraphs if s <= rate.position < e)
            aprs = [p for p in aprs if para[0] <= p.position < para[1]]
        if not aprs:
            where = "in the template" if html else "in the same paragraph"
            problems.append(("rate_without_apr", f"rate {rate.figure!r} has no APR {where}"))
        elif html and not any(apr.prominence.at_least(rate.prominence) for apr in aprs):
            problems.append(
                (
                    "apr_less_prominent",
                    f"rate {rate.figure!r} is shown larger or bolder than every APR",
                )
            )
    return problems


# --- trigger terms and disclosures -----------------------------------------------------------

_TRIGGER_TERMS = [
    (
        "a payment amount",
        re.compile(
            r"\$\s?\d[\d,]*(?:\.\d+)?[^.$\n]{0,25}?\b(?:a month|per month|monthly|each month"
            r"|/mo|payments?)\b|\b(?:payments?|principal and interest|savings?|save)\b"
            r"[^.$\n]{0,40}\$\s?\d",
            re.I,
        ),
    ),
    (
        "a number of payments or repayment period",
        re.compile(
            r"\b\d+\s+(?:monthly\s+)?payments\b|\b\d+\s*-?\s*(?:years?|yrs?|months?)\b[\s-]*"
            r"(?:fixed|term|loan|mortgage|repayment|amortization)\b",
            re.I,
        ),
    ),
    ("a finance charge", re.compile(r"\bfinance charges?\b", re.I)),
    (
        "a down payment figure",
        re.compile(
            r"\bdown payment\b[^.\n]{0,30}?(?:\$\s?\d|\d+\s*%)|\d+\s*%\s*down\b"
            r"|\$\s?\d[\d,]*\s*down\b",
            re.I,
        ),
    ),
]
_DISCLOSURES = [
    ("the APR", re.compile(r"\bAPR\b")),
    ("whether the APR can increase", re.compile(r"\bAPR\b[^.]{0,60}\b(?:increase|adjust)", re.I)),
    (
        "the down payment or loan-to-value assumed",
        re.compile(r"\bdown payment\b|\bloan-to-value\b|\bLTV\b", re.I),
    ),
    ("the repayment terms ('N monthly payments of')", re.compile(r"\b\d+ monthly payments of\b")),
    (
        "that payments do not include taxes and insurance",
        re.compile(r"\bdo(?:es)? not include\b[^.]{0,40}\btaxes and insurance\b", re.I),
    ),
    (
        "that the actual payment will be greater",
        re.compile(r"\bactual payment\b[^.]{0,30}\bwill be greater\b", re.I),
    ),
    ("'not a commitment to lend'", re.compile(r"\bnot a commitment to lend\b", re.I)),
]


def disclosure_problems(text: str) -> list[tuple[str, str]]:
    """A Reg Z trigger term used without every disclosure it requires."""
    triggers = [label for label, pattern in _TRIGGER_TERMS if pattern.search(text)]
    if not triggers:
        return []
    missing = [label for label, pattern in _DISCLOSURES if not pattern.search(text)]
    if not missing:
        return []
    message = f"uses {', '.join(triggers)} but lacks {'; '.join(missing)}"
    return [("trigger_term_disclosures", message)]
