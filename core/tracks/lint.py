"""The compliance lint over every message template (COMPLIANCE.md §4–§6), run at start-up.

Each template is rendered with ``SAMPLE_CONTEXT`` (long but realistic names and links, so the
SMS length check is a worst case) and the output is checked. The rules, precisely:

- **SMS** (``*.sms.j2``): at most ``max_sms_segments`` segments with "Reply STOP to opt out"
  included; carries the brokerage name, the LO's name and NMLS ID; says "Reply STOP to opt out"
  when ``step.include_stop`` is true. **No figures** (also for email subjects): after removing
  links and "NMLS <id>", none of ``%``/"percent", ``$``/"dollars"/"200k", the word "APR", a
  number with a decimal point or thousands separator, a loan term ("30-year fixed", "15 yr
  loan", "5/1 ARM"), or a number at most one word away from a money word (payment, rate,
  interest, save/savings, down, points, fees, costs, term, month/mo/monthly). So "your loan
  turns 5 years old" passes and "6 months" or "payment of 900" does not.
- **Rates**: a percentage is an APR when "APR"/"annual percentage rate" is right beside it, a
  loan-to-value or down payment when "LTV"/"loan-to-value"/"down" is; any other percentage is
  a stated rate. In text a stated rate needs an APR in the same paragraph; in HTML an APR
  whose figure and label are no smaller and no lighter (from tags and inline styles) than it.
- **Trigger terms** (a payment amount, a number of payments or repayment period, "finance
  charge", a down payment figure) in an email require every disclosure: the APR, whether it
  can increase, the down payment or LTV, "N monthly payments of", "do not include taxes and
  insurance", "actual payment ... will be greater", "not a commitment to lend".
- **Email footer** (text and HTML): "This is an advertisement", the postal address, company
  and LO NMLS IDs, the licensing line, the support contact, "Equal Housing Opportunity"/
  "Lender", the unsubscribe link (in HTML as a link target).
- **Blocklist** (every template, case-insensitive, whole words): "pre-approved", "guaranteed",
  "approved" (any use: the copy never needs it), "government program", "VA approved",
  "FHA approved", "no cost"/"no closing costs" (unless ``no_cost_allowed``), "lowest rate",
  wording implying a government or official notice, and other lenders' names.
- **Internal rate wording** (every SMS and email part; call tasks are for the loan officer):
  none of the batch's rate description (``Offer.describe()``) reaches a borrower: the words
  "offset", "set manually", "PMMS", "FRED", "index", a snapshot field name (``rate_source``,
  ``offer_rate``, ...), arithmetic ("+ 0.25", "= 6.50%", a lone "="), or an ISO date
  ("2026-12-02"); links are removed first. Borrower copy says "today's rate of 5.75 % (our
  30-year fixed rate as of December 2, 2026)" (``math.todays_rate``).
- **Variants** (``intro.b.sms.j2``, variant b of ``intro``): every rule above, exactly as for
  the base template, and a variant always has its base beside it.
- **Template variables** (Jinja AST, including included templates): no protected-class
  attribute (race, religion, sex, age, marital status, ...); ``math`` only in the email and
  call-task templates of refinance, pmi_removal and fha_mip, never in an SMS or subject;
  ``reason.rate_source`` (the internal description) only in call tasks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from jinja2 import TemplateError, nodes

from core.tracks.render import Rendered, RenderError, TemplateRenderer
from core.tracks.smslength import sms_segments

MATH_TRACKS = frozenset({"refinance", "pmi_removal", "fha_mip"})
SYSTEM_FOLDER = "system"
_SUFFIXES = {
    ".sms.j2": ("sms", "sms"),
    ".subject.j2": ("email", "subject"),
    ".txt.j2": ("email", "txt"),
    ".html.j2": ("email", "html"),
    ".task.j2": ("call_task", "task"),
}
_TRACK_TRIGGERS = {
    "refinance": "rate_drop",
    "repeat_purchase": "loan_age",
    "anniversary": "closing_anniversary",
    "stalled": "fallout_anniversary",
}
STOP_TEXT = "Reply STOP to opt out"


@dataclass(frozen=True)
class LintProblem:
    """One broken rule in one template file."""

    path: str
    rule: str
    message: str


class TemplateLintError(Exception):
    """Templates that break compliance rules; the message lists every problem."""

    def __init__(self, problems: list[LintProblem]) -> None:
        self.problems = problems
        lines = [f"{p.path}: [{p.rule}] {p.message}" for p in problems]
        super().__init__(f"{len(problems)} template problem(s):\n" + "\n".join(lines))


# --- the representative worst-case context --------------------------------------------------

SAMPLE_CONTEXT: dict[str, Any] = {
    "borrower": {"first_name": "Maximiliana-Ros", "last_name": "Vanderbilt-Okonkwo"},
    "lo": {
        "name": "Alexandra Montgomery-Whitby",
        "nmls_id": "7654321",
        "email": "alexandra.montgomery-whitby@evergreenmountainlending.com",
    },
    "company": {
        "name": "Evergreen Mountain Home Lending",
        "nmls_id": "1234567",
        "address": "1234 Northwest Evergreen Parkway, Suite 1200, Portland, OR 97209",
        "licensing": "Licensed by the Oregon Division of Financial Regulation, ML-5150; "
        "Washington DFI Consumer Loan Company License CL-1234567.",
        "support": "(503) 555-0142 or evergreenmountainlending.com/help",
    },
    "links": {
        # Signed tokens (core/tokens.py) are about 38 characters: 80-character links.
        "savings": "https://go.evergreenmountainlending.com/s/"
        "MTIzNDU2Nzg.t2x9kq.Xq7vXb2NpR4tYw9ZcL3mHd",
        "unsubscribe": "https://go.evergreenmountainlending.com/u/"
        "MTIzNDU2Nzg.t2x9kq.Xq7vXb2NpR4tYw9ZcL3mHd",
    },
    "step": {"number": 1, "include_stop": True},
    "reason": {
        "trigger": "rate_drop",
        "loan_age_years": 5,
        "anniversary_years": 10,
        "fallout_months": 6,
        "arm_reset_date": "September 30, 2027",
        "rate_product": "30-year fixed",
        # What the rate-drop trigger stores (Offer.describe()): loan officer text only.
        "rate_source": "Freddie Mac PMMS 30-year fixed average 6.00% (2026-09-24) "
        "+ 0.25 offset = 6.25%",
    },
    "math": {
        "current_payment": "$2,398.20",
        "remaining_balance": "$318,450",
        "example_rate": "5.875 %",
        "example_apr": "6.012 %",
        "todays_rate": "today's rate of 5.875 % (our 30-year fixed rate as of September 24, 2026)",
        "new_payment": "$1,883.71",
        "new_term_years": "30",
        "monthly_savings": "$514.49",
        "closing_costs": "$5,185",
        "break_even_months": "11",
        "ltv_assumed": "80%",
        "rate_as_of": "September 24, 2026",
    },
}


def sample_context(track: str, *, include_stop: bool = True, with_math: bool = True) -> dict:
    """SAMPLE_CONTEXT adjusted for one track and step."""
    context = {key: dict(value) for key, value in SAMPLE_CONTEXT.items()}
    context["reason"]["trigger"] = _TRACK_TRIGGERS.get(track, track)
    context["step"]["include_stop"] = include_stop
    if not with_math:
        del context["math"]
    return context


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


# --- rates, APRs and their prominence ----------------------------------------------------------


@dataclass(frozen=True, order=True)
class Prominence:
    """How a piece of HTML text looks: font size in px and weight (400 normal, 700 bold)."""

    size: float = 16.0
    weight: int = 400

    def at_least(self, other: Prominence) -> bool:
        """No smaller and no lighter than the other."""
        return self.size >= other.size - 0.01 and self.weight >= other.weight


@dataclass
class _Styled:
    """Text with the prominence of each run of characters."""

    text: str
    runs: list[tuple[int, int, Prominence]] = field(default_factory=list)

    def at(self, index: int) -> Prominence:
        """How the character at this index looks."""
        for start, end, prominence in self.runs:
            if start <= index < end:
                return prominence
        return Prominence()


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


def footer_problems(text: str, link_targets: list[str] | None = None) -> list[tuple[str, str]]:
    """The CAN-SPAM and licensing footer items missing from an email part."""
    company, lo, links = SAMPLE_CONTEXT["company"], SAMPLE_CONTEXT["lo"], SAMPLE_CONTEXT["links"]
    flat = " ".join(text.split())
    items = [
        ("'This is an advertisement'", "this is an advertisement" in flat.lower()),
        ("the company's postal address", company["address"] in flat),
        ("the company NMLS ID", company["nmls_id"] in flat),
        ("the loan officer's NMLS ID", lo["nmls_id"] in flat),
        ("the state licensing line", " ".join(company["licensing"].split()) in flat),
        ("the support contact", company["support"] in flat),
        (
            "'Equal Housing Opportunity'",
            re.search(r"equal housing (?:opportunity|lender)", flat, re.I) is not None,
        ),
    ]
    unsubscribe = links["unsubscribe"]
    has_link = unsubscribe in (link_targets if link_targets is not None else flat)
    items.append(("the unsubscribe link", has_link))
    return [("footer", f"email lacks {label}") for label, present in items if not present]


# --- HTML to styled text ---------------------------------------------------------------------

_HEADING_SIZE = {"h1": 32.0, "h2": 24.0, "h3": 18.72, "h4": 16.0, "h5": 13.28, "h6": 10.72}
_SCALE = {"small": 0.833, "sub": 0.83, "sup": 0.83, "big": 1.2}
_BOLD_TAGS = {"b", "strong", "th", *_HEADING_SIZE}
_BLOCK_TAGS = {"p", "div", "br", "tr", "li", "ul", "ol", "table", "hr", "section", "blockquote"}
_BLOCK_TAGS |= set(_HEADING_SIZE)
_VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}
_HIDDEN_TAGS = {"head", "style", "script", "title"}
_NAMED_SIZES = {
    "xx-small": 9.0,
    "x-small": 10.0,
    "small": 13.0,
    "medium": 16.0,
    "large": 18.0,
    "x-large": 24.0,
    "xx-large": 32.0,
}
_FONT_SIZE = re.compile(r"font-size\s*:\s*([\d.]+)(px|pt|em|rem|%)|font-size\s*:\s*([a-z-]+)")
_FONT_WEIGHT = re.compile(r"font-weight\s*:\s*(\w+)")


def _styled_by(tag: str, style: str, parent: Prominence) -> Prominence:
    """The prominence inside a tag, from its kind and inline style."""
    size = _HEADING_SIZE.get(tag, parent.size * _SCALE.get(tag, 1.0))
    weight = 700 if tag in _BOLD_TAGS else parent.weight
    style = style.lower()
    if match := _FONT_SIZE.search(style):
        number, unit, named = match.groups()
        if named:
            relative = {"smaller": parent.size * 0.833, "larger": parent.size * 1.2}
            size = relative.get(named, _NAMED_SIZES.get(named, size))
        else:
            factor = {"px": 1.0, "pt": 4 / 3, "rem": 16.0}.get(unit)
            value = float(number)
            size = (
                value * factor if factor else parent.size * (value / 100 if unit == "%" else value)
            )
    if match := _FONT_WEIGHT.search(style):
        word = match.group(1)
        named_weights = {"normal": 400, "bold": 700, "bolder": 700, "lighter": 300}
        weight = int(word) if word.isdigit() else named_weights.get(word, weight)
    return Prominence(size, weight)


class _HtmlReader(HTMLParser):
    """Collects the visible text of an email, its link targets and how prominent each run is."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.styled = _Styled("")
        self.links: list[str] = []
        self._stack: list[tuple[str, Prominence]] = []
        self._hidden = 0

    def _current(self) -> Prominence:
        return self._stack[-1][1] if self._stack else Prominence()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])
        if tag in _BLOCK_TAGS:
            self.styled.text += "\n"
        elif tag in ("td", "th"):
            self.styled.text += " "
        if tag in _VOID_TAGS:
            return
        self._hidden += tag in _HIDDEN_TAGS
        self._stack.append((tag, _styled_by(tag, values.get("style", ""), self._current())))

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.styled.text += "\n"
        if any(open_tag == tag for open_tag, _ in self._stack):
            while self._stack:
                open_tag, _ = self._stack.pop()
                self._hidden -= open_tag in _HIDDEN_TAGS
                if open_tag == tag:
                    break

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        data = re.sub(r"\s+", " ", data)
        start = len(self.styled.text)
        self.styled.text += data
        self.styled.runs.append((start, start + len(data), self._current()))


def read_html(html: str) -> tuple[_Styled, list[str]]:
    """The visible text of an HTML email with its prominence, and its link targets."""
    reader = _HtmlReader()
    reader.feed(html)
    reader.close()
    return reader.styled, reader.links


# --- template variables (Jinja AST) ----------------------------------------------------------

# Protected classes (ECOA, Fair Housing Act): never a template variable or attribute.
# fmt: off
PROTECTED_ATTRIBUTES = frozenset({
    "race", "ethnicity", "color", "colour", "religion", "creed", "national_origin", "nationality",
    "ancestry", "sex", "gender", "gender_identity", "sexual_orientation", "marital_status",
    "married", "spouse", "age", "birth_date", "birthdate", "date_of_birth", "dob", "birthday",
    "birth_year", "year_of_birth", "familial_status", "children", "dependents", "pregnancy",
    "pregnant", "disability", "disabled", "handicap", "public_assistance",
    "receives_public_assistance", "military_status", "veteran_status",
})
# fmt: on
_PROTECTED_PREFIXES = ("race_", "ethnic", "religio", "gender", "marital", "familial", "disabilit")
_PROTECTED_PREFIXES += ("national_origin", "sexual_", "birth", "pregnan", "handicap")


def variable_names(renderer: TemplateRenderer, name: str) -> dict[str, set[str]]:
    """Per template file (this one and all it includes): every variable and attribute name."""
    found: dict[str, set[str]] = {}
    for source_name, source in renderer.sources([name]).items():
        names: set[str] = set()
        parsed = renderer.env.parse(source)
        for node in parsed.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)):
            if isinstance(node, nodes.Name):
                names.add(node.name)
            elif isinstance(node, nodes.Getattr):
                names.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                names.add(node.arg.value)
        found[source_name] = names
    return found


def _is_protected(name: str) -> bool:
    lowered = name.lower()
    return lowered in PROTECTED_ATTRIBUTES or lowered.startswith(_PROTECTED_PREFIXES)


def variable_problems(
    renderer: TemplateRenderer, name: str, *, math_allowed: bool, internal_allowed: bool = False
) -> list[LintProblem]:
    """Protected-class attributes anywhere; the math and the internal rate text out of place."""
    problems = []
    for source_name, names in variable_names(renderer, name).items():
        for protected in sorted(n for n in names if _is_protected(n)):
            message = f"uses protected-class attribute {protected!r} (via {name})"
            problems.append(LintProblem(source_name, "protected_attribute", message))
        if "math" in names and not math_allowed:
            message = (
                f"{name} uses the payment math, allowed only in refinance, pmi_removal "
                "and fha_mip email bodies and call tasks"
            )
            problems.append(LintProblem(source_name, "math_not_allowed", message))
        if "rate_source" in names and not internal_allowed:
            message = (
                f"{name} uses reason.rate_source, the internal rate description: borrower "
                "messages say math.todays_rate"
            )
            problems.append(LintProblem(source_name, "internal_rate_source", message))
    return problems


# --- per-channel checks ----------------------------------------------------------------------


def _named(path: str, found: list[tuple[str, str]]) -> list[LintProblem]:
    return [LintProblem(path, rule, message) for rule, message in found]


def _sms_problems(path: str, body: str, *, track: str, max_segments: int) -> list[LintProblem]:
    """Length, identification, STOP text and figures of a rendered SMS."""
    found: list[tuple[str, str]] = []
    encoding, segments = sms_segments(body)
    if segments > max_segments:
        found.append(("sms_too_long", f"{segments} {encoding} segments (at most {max_segments})"))
    found += [("sms_figures", f"SMS carries {figure}") for figure in figures_in(body)]
    company, lo = SAMPLE_CONTEXT["company"], SAMPLE_CONTEXT["lo"]
    lowered = body.lower()
    if track == SYSTEM_FOLDER:
        return _named(path, found + _system_sms_problems(path, body))
    for label, value in (
        ("the brokerage name", company["name"]),
        ("the loan officer's name", lo["name"]),
        ("the loan officer's NMLS ID", lo["nmls_id"]),
    ):
        if value not in body:
            found.append(("sms_identification", f"SMS lacks {label}"))
    if STOP_TEXT.lower() not in lowered:
        found.append(("sms_stop", f"SMS lacks {STOP_TEXT!r} when step.include_stop is true"))
    return _named(path, found)


def _system_sms_problems(path: str, body: str) -> list[tuple[str, str]]:
    """The HELP answer carries what §2 lists; the opt-out confirmation carries no marketing."""
    company = SAMPLE_CONTEXT["company"]
    found = []
    if company["name"] not in body:
        found.append(("system_sms", "lacks the brokerage name"))
    if path.endswith("/help.sms.j2"):
        required = [
            ("the support contact", company["support"] in body),
            ("STOP instructions", "stop" in body.lower()),
            ("the message frequency", re.search(r"\bper (?:day|week|month)\b", body) is not None),
            ("'Msg & data rates may apply'", "msg & data rates may apply" in body.lower()),
        ]
        found += [("system_sms", f"HELP lacks {label}") for label, ok in required if not ok]
    if path.endswith("/optout_confirmation.sms.j2") and _URL.search(body):
        found.append(("system_sms", "the opt-out confirmation must not carry a link"))
    return found


def _email_problems(paths: dict[str, str], rendered: Rendered) -> list[LintProblem]:
    """Subject figures, rates and APRs, trigger-term disclosures and the footer of an email."""
    subject, text = rendered.email_subject or "", rendered.email_text or ""
    styled_html, links = read_html(rendered.email_html or "")
    html = styled_html.text
    found = [
        LintProblem(paths["subject"], "subject_figures", f"subject carries {figure}")
        for figure in figures_in(subject)
    ]
    found += _named(paths["txt"], rate_problems(_Styled(text), html=False))
    found += _named(paths["html"], rate_problems(styled_html, html=True))
    for part, content in (("txt", text), ("html", html)):
        found += _named(paths[part], disclosure_problems(content))
    found += _named(paths["txt"], footer_problems(text))
    found += _named(paths["html"], footer_problems(html, links))
    return found


def _borrower_parts(rendered: Rendered) -> dict[str, str | None]:
    """What a borrower reads of a rendered step, by part (HTML as its visible text)."""
    return {
        "sms": rendered.sms_body,
        "subject": rendered.email_subject,
        "txt": rendered.email_text,
        "html": read_html(rendered.email_html)[0].text if rendered.email_html else None,
    }


def _internal_wording_problems(paths: dict[str, str], rendered: Rendered) -> list[LintProblem]:
    """Internal rate wording in any part a borrower reads (not the loan officer's call task)."""
    found = []
    for part, content in _borrower_parts(rendered).items():
        for wording in internal_wording(content or ""):
            message = f"borrower text carries {wording}"
            found.append(LintProblem(paths[part], "internal_wording", message))
    return found


def _blocklist_problems(
    paths: dict[str, str], rendered: Rendered, *, no_cost_allowed: bool
) -> list[LintProblem]:
    """Blocklisted phrases in every rendered part of a step."""
    parts = {
        "sms": rendered.sms_body,
        "subject": rendered.email_subject,
        "txt": rendered.email_text,
        "html": read_html(rendered.email_html)[0].text if rendered.email_html else None,
        "task": rendered.task_text,
    }
    found = []
    for part, content in parts.items():
        if content is not None:
            problems = blocked_phrases(content, no_cost_allowed=no_cost_allowed)
            found += _named(paths[part], problems)
    return found


# --- walking the folder ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """One template as the renderer sees it: a track, a name, a channel and its part files."""

    track: str
    name: str
    channel: str
    paths: dict[str, str]


def _units(folder: Path) -> Iterator[_Unit | LintProblem]:
    """Every template of every track folder (shared `_` folders are only included)."""
    for track_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        # `web/` holds the web process's pages, checked in a real browser, not message templates.
        if track_dir.name.startswith(("_", ".")) or track_dir.name == "web":
            continue
        grouped: dict[tuple[str, str], dict[str, str]] = {}
        for file in sorted(p for p in track_dir.iterdir() if p.is_file()):
            relative = f"{track_dir.name}/{file.name}"
            suffix = next((s for s in _SUFFIXES if file.name.endswith(s)), None)
            if suffix is None:
                yield LintProblem(relative, "unknown_file", "not a known template kind")
                continue
            channel, part = _SUFFIXES[suffix]
            grouped.setdefault((file.name[: -len(suffix)], channel), {})[part] = relative
        for (name, channel), paths in grouped.items():
            base = name.partition(".")[0]
            if base != name and (base, channel) not in grouped:
                # A variant (intro.b) only ever replaces its step's own template (intro).
                message = f"variant {name!r} has no base template {base!r} for {channel}"
                yield LintProblem(next(iter(paths.values())), "variant_without_base", message)
            yield _Unit(track_dir.name, name, channel, paths)


def _render_variants(renderer: TemplateRenderer, unit: _Unit) -> list[Rendered]:
    """The step rendered with the sample context, and without the math when it can be."""
    # intro.b.sms.j2 is variant b of intro (core.tracks.variants): rendered the way a send is.
    template, _, variant = unit.name.partition(".")
    contexts = [sample_context(unit.track)]
    if unit.track in MATH_TRACKS and unit.channel != "sms":
        contexts.append(sample_context(unit.track, with_math=False))
    rendered = []
    for number, context in enumerate(contexts):
        try:
            rendered.append(
                renderer.render_step(
                    track=unit.track,
                    template=template,
                    channel=unit.channel,
                    context=context,
                    variant=variant or None,
                )
            )
        except RenderError:
            if number == 0:
                raise
    return rendered


def _lint_unit(
    renderer: TemplateRenderer, unit: _Unit, *, max_sms_segments: int, no_cost_allowed: bool
) -> list[LintProblem]:
    """Every rule that applies to one template."""
    if unit.channel == "email" and len(unit.paths) < 3:
        missing = sorted({"subject", "txt", "html"} - set(unit.paths))
        message = f"email {unit.name!r} lacks its {', '.join(missing)} part(s)"
        return [LintProblem(next(iter(unit.paths.values())), "email_parts_missing", message)]
    problems: list[LintProblem] = []
    for part, path in unit.paths.items():
        math_allowed = unit.track in MATH_TRACKS and part in ("txt", "html", "task")
        problems += variable_problems(
            renderer, path, math_allowed=math_allowed, internal_allowed=part == "task"
        )
    try:
        variants = _render_variants(renderer, unit)
    except (RenderError, TemplateError) as exc:
        return [*problems, LintProblem(unit.paths[min(unit.paths)], "render_error", str(exc))]
    for rendered in variants:
        problems += _blocklist_problems(unit.paths, rendered, no_cost_allowed=no_cost_allowed)
        problems += _internal_wording_problems(unit.paths, rendered)
        if unit.channel == "sms":
            problems += _sms_problems(
                unit.paths["sms"],
                rendered.sms_body or "",
                track=unit.track,
                max_segments=max_sms_segments,
            )
        elif unit.channel == "email":
            problems += _email_problems(unit.paths, rendered)
    return problems


def lint_templates(
    folder: Path | None = None, *, max_sms_segments: int = 2, no_cost_allowed: bool = False
) -> list[LintProblem]:
    """Every compliance problem in the templates folder (the repo's by default)."""
    renderer = TemplateRenderer(folder)
    problems: list[LintProblem] = []
    for unit in _units(renderer.folder):
        if isinstance(unit, LintProblem):
            problems.append(unit)
            continue
        problems += _lint_unit(
            renderer, unit, max_sms_segments=max_sms_segments, no_cost_allowed=no_cost_allowed
        )
    return list(dict.fromkeys(problems))


def assert_templates_clean(folder: Path | None = None) -> None:
    """Raise TemplateLintError listing every problem; called at start-up before any send."""
    problems = lint_templates(folder)
    if problems:
        raise TemplateLintError(problems)
