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

Here: the worst-case context, the per-channel checks and the walk over the folder; the text
rules are in core.tracks.rules, HTML prominence in core.tracks.html_text, the variable checks
in core.tracks.variables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from core.tracks.html_text import _Styled, read_html
from core.tracks.render import Rendered, RenderError, TemplateRenderer
from core.tracks.rules import (
    _URL,
    blocked_phrases,
    disclosure_problems,
    figures_in,
    internal_wording,
    rate_problems,
)
from core.tracks.smslength import sms_segments
from core.tracks.variables import LintProblem, variable_problems

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
