"""The compliance lint: shipped templates are clean, and each rule catches a bad template."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.tracks.lint import (
    LintProblem,
    TemplateLintError,
    assert_templates_clean,
    blocked_phrases,
    figures_in,
    internal_wording,
    lint_templates,
)
from core.tracks.render import TEMPLATES_FOLDER

SIGNOFF = '{% include "_shared/signoff.sms.j2" %}'
GOOD_SMS = "{{ borrower.first_name }}, rates have moved. See {{ links.savings }}" + SIGNOFF
FOOTER_TXT = '{% include "_shared/footer.txt.j2" %}'
GOOD_HTML = '{% extends "_shared/layout.html.j2" %}{% block body %}<p>Hi.</p>{% endblock %}'
MATH_TXT = '{% include "_shared/rate_math.txt.j2" %}'


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A templates folder holding only the shipped shared pieces, to add bad templates to."""
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES_FOLDER / "_shared", copy / "_shared")
    return copy


def copy_track(folder: Path, track: str) -> None:
    """Bring one shipped track's templates into the folder."""
    shutil.copytree(TEMPLATES_FOLDER / track, folder / track)


def write(folder: Path, name: str, text: str) -> None:
    """Write one template file into the folder."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_email(
    folder: Path,
    track: str,
    name: str,
    *,
    subject: str = "A note about your loan",
    text: str = "Hi.\n\n" + FOOTER_TXT,
    html: str = GOOD_HTML,
) -> None:
    """Write the three parts of an email."""
    write(folder, f"{track}/{name}.subject.j2", subject)
    write(folder, f"{track}/{name}.txt.j2", text)
    write(folder, f"{track}/{name}.html.j2", html)


def problems_for(folder: Path, path: str, **options: object) -> list[LintProblem]:
    """The lint problems reported for one template file."""
    return [p for p in lint_templates(folder, **options) if p.path == path]  # type: ignore[arg-type]


def rules_for(folder: Path, path: str, **options: object) -> set[str]:
    """The rules one template file breaks."""
    return {p.rule for p in problems_for(folder, path, **options)}


def test_shipped_templates_lint_clean() -> None:
    assert lint_templates() == []
    assert_templates_clean()


def test_shared_pieces_alone_are_clean_before_each_bad_template_is_added(folder: Path) -> None:
    assert lint_templates(folder) == []


def test_well_formed_sms_and_email_pass(folder: Path) -> None:
    write(folder, "refinance/good.sms.j2", GOOD_SMS)
    write_email(folder, "anniversary", "good")
    assert lint_templates(folder) == []


# --- SMS -------------------------------------------------------------------------------------


def test_sms_with_a_dollar_figure_is_caught(folder: Path) -> None:
    write(folder, "refinance/bad.sms.j2", GOOD_SMS.replace("rates have moved", "save $200"))
    problems = problems_for(folder, "refinance/bad.sms.j2")
    assert {p.rule for p in problems} == {"sms_figures"}
    assert "SMS carries a dollar amount ('$')" in {p.message for p in problems}


@pytest.mark.parametrize(
    "phrase",
    [
        "rates near 5.99",
        "rates under 6%",
        "a lower APR",
        "a 30-year fixed",
        "a 15 yr loan",
        "a 5/1 ARM",
        "a payment of 1200",
        "save 300 a month",
        "break even in 28 months",
        "200k of equity",
        "no money down",
    ],
)
def test_sms_figures_rule_catches_rates_payments_and_terms(folder: Path, phrase: str) -> None:
    write(folder, "refinance/bad.sms.j2", GOOD_SMS.replace("rates have moved", phrase))
    if phrase == "no money down":
        # Words alone are not figures: the rule is about numbers, not topics.
        assert rules_for(folder, "refinance/bad.sms.j2") == set()
    else:
        assert rules_for(folder, "refinance/bad.sms.j2") == {"sms_figures"}


@pytest.mark.parametrize(
    "text",
    [
        "your loan turns 5 years old this month",
        "you bought your home 7 years ago, and rates have moved",
        "Happy 10-year home anniversary",
        "your rate resets on October 1, 2027",
        "Up to 3 msgs per week. Msg & data rates may apply. NMLS 1234567",
        "https://x.example/s/rate5percent123",
    ],
)
def test_loan_age_facts_dates_links_and_nmls_ids_are_not_figures(text: str) -> None:
    assert figures_in(text) == []


def test_sms_missing_stop_on_a_first_message_is_caught(folder: Path) -> None:
    write(
        folder,
        "refinance/bad.sms.j2",
        "{{ borrower.first_name }}, rates moved: {{ links.savings }} "
        "- {{ lo.name }}, {{ company.name }}, NMLS {{ lo.nmls_id }}",
    )
    problems = problems_for(folder, "refinance/bad.sms.j2")
    assert [p.rule for p in problems] == ["sms_stop"]


def test_sms_without_the_loan_officer_nmls_id_is_caught(folder: Path) -> None:
    write(
        folder,
        "refinance/bad.sms.j2",
        "{{ borrower.first_name }}, rates moved: {{ links.savings }} - {{ lo.name }}, "
        "{{ company.name }}{% if step.include_stop %}. Reply STOP to opt out{% endif %}",
    )
    problems = problems_for(folder, "refinance/bad.sms.j2")
    assert [(p.rule, p.message) for p in problems] == [
        ("sms_identification", "SMS lacks the loan officer's NMLS ID")
    ]


def test_over_long_sms_is_caught(folder: Path) -> None:
    long = GOOD_SMS.replace("rates have moved", "rates have moved " + "and so on " * 15)
    write(folder, "refinance/bad.sms.j2", long)
    problems = problems_for(folder, "refinance/bad.sms.j2")
    assert [p.rule for p in problems] == ["sms_too_long"]
    assert "3 GSM-7 segments (at most 2)" in problems[0].message
    assert rules_for(folder, "refinance/bad.sms.j2", max_sms_segments=3) == set()


def test_one_curly_quote_makes_a_shipped_sms_too_long(folder: Path) -> None:
    copy_track(folder, "refinance")
    text = (folder / "refinance/intro.sms.j2").read_text().replace("rates are", "rates’re")
    write(folder, "refinance/intro.sms.j2", text)
    problems = problems_for(folder, "refinance/intro.sms.j2")
    assert [p.rule for p in problems] == ["sms_too_long"]
    assert "UCS-2" in problems[0].message


def test_math_in_an_sms_is_caught_even_before_rendering(folder: Path) -> None:
    write(folder, "refinance/bad.sms.j2", GOOD_SMS + "{{ math.monthly_savings }}")
    assert {"math_not_allowed", "sms_figures"} <= rules_for(folder, "refinance/bad.sms.j2")


# --- email -----------------------------------------------------------------------------------


def test_rate_without_apr_is_caught(folder: Path) -> None:
    write_email(folder, "refinance", "bad", text="Rates as low as 5.5% today.\n\n" + FOOTER_TXT)
    problems = problems_for(folder, "refinance/bad.txt.j2")
    assert [p.rule for p in problems] == ["rate_without_apr"]
    assert "'5.5%'" in problems[0].message


def test_apr_in_another_paragraph_does_not_count(folder: Path) -> None:
    text = "Rates as low as 5.5% today.\n\nThe APR is 5.7% APR.\n\n" + FOOTER_TXT
    write_email(folder, "refinance", "bad", text=text)
    assert rules_for(folder, "refinance/bad.txt.j2") == {"rate_without_apr"}


def test_rate_beside_its_apr_passes(folder: Path) -> None:
    text = "Example: 5.5% interest rate, 5.71% APR. The APR is fixed and will not increase.\n\n"
    write_email(folder, "refinance", "ok", text=text + FOOTER_TXT)
    assert rules_for(folder, "refinance/ok.txt.j2") == set()


def test_apr_smaller_than_the_rate_in_html_is_caught(folder: Path) -> None:
    body = "<h2>5.5% interest rate</h2><p><small>5.71% APR</small></p>"
    write_email(folder, "refinance", "bad", html=GOOD_HTML.replace("<p>Hi.</p>", body))
    assert rules_for(folder, "refinance/bad.html.j2") == {"apr_less_prominent"}


def test_apr_lighter_than_the_rate_in_html_is_caught(folder: Path) -> None:
    body = "<p><strong>5.5% interest rate</strong>, 5.71% <span>APR</span></p>"
    write_email(folder, "refinance", "bad", html=GOOD_HTML.replace("<p>Hi.</p>", body))
    assert rules_for(folder, "refinance/bad.html.j2") == {"apr_less_prominent"}


def test_apr_as_prominent_as_the_rate_in_html_passes(folder: Path) -> None:
    body = '<p style="font-size:20px"><b>5.5% interest rate</b>, <b>5.71% APR</b></p>'
    write_email(folder, "refinance", "ok", html=GOOD_HTML.replace("<p>Hi.</p>", body))
    assert rules_for(folder, "refinance/ok.html.j2") == set()


def test_trigger_term_without_disclosures_is_caught(folder: Path) -> None:
    text = "Your payment could be $1,500 a month.\n\n" + FOOTER_TXT
    write_email(folder, "refinance", "bad", text=text)
    problems = problems_for(folder, "refinance/bad.txt.j2")
    assert [p.rule for p in problems] == ["trigger_term_disclosures"]
    assert "a payment amount" in problems[0].message
    assert "taxes and insurance" in problems[0].message


def test_trigger_term_with_the_shipped_disclosures_passes(folder: Path) -> None:
    write_email(folder, "refinance", "ok", text=f"Hi.\n\n{MATH_TXT}\n\n{FOOTER_TXT}")
    assert rules_for(folder, "refinance/ok.txt.j2") == set()


def test_disclosure_removed_from_shared_math_breaks_every_email_using_it(folder: Path) -> None:
    copy_track(folder, "refinance")
    math = folder / "_shared" / "rate_math.txt.j2"
    math.write_text(math.read_text().replace("not a commitment to lend", "an estimate"))
    paths = {p.path for p in lint_templates(folder) if p.rule == "trigger_term_disclosures"}
    assert {"refinance/intro.txt.j2", "refinance/follow_up.txt.j2"} <= paths
    assert "refinance/intro.html.j2" not in paths


def test_missing_footer_item_is_caught(folder: Path) -> None:
    footer = folder / "_shared" / "footer.html.j2"
    footer.write_text(footer.read_text().replace("Equal Housing Opportunity.", ""))
    write_email(folder, "anniversary", "bad")
    problems = problems_for(folder, "anniversary/bad.html.j2")
    assert [(p.rule, p.message) for p in problems] == [
        ("footer", "email lacks 'Equal Housing Opportunity'")
    ]
    assert rules_for(folder, "anniversary/bad.txt.j2") == set()


def test_a_footer_without_the_support_contact_is_caught(folder: Path) -> None:
    footer = folder / "_shared" / "footer.txt.j2"
    footer.write_text(footer.read_text().replace("Questions? {{ company.support }}\n", ""))
    write_email(folder, "anniversary", "bad")
    problems = problems_for(folder, "anniversary/bad.txt.j2")
    assert [(p.rule, p.message) for p in problems] == [
        ("footer", "email lacks the support contact")
    ]
    assert rules_for(folder, "anniversary/bad.html.j2") == set()


def test_unsubscribe_must_be_a_link_in_html(folder: Path) -> None:
    footer = folder / "_shared" / "footer.html.j2"
    footer.write_text(
        footer.read_text().replace(
            '<a href="{{ links.unsubscribe }}">Unsubscribe</a>', "Unsubscribe: reply STOP"
        )
    )
    write_email(folder, "anniversary", "bad")
    problems = problems_for(folder, "anniversary/bad.html.j2")
    assert [p.message for p in problems] == ["email lacks the unsubscribe link"]


def test_email_without_all_parts_is_caught(folder: Path) -> None:
    write(folder, "anniversary/half.subject.j2", "Hello")
    write(folder, "anniversary/half.txt.j2", "Hi.\n" + FOOTER_TXT)
    problems = problems_for(folder, "anniversary/half.subject.j2")
    assert [p.rule for p in problems] == ["email_parts_missing"]
    assert "html" in problems[0].message


def test_figures_in_a_subject_are_caught(folder: Path) -> None:
    write_email(folder, "refinance", "bad", subject="Lower your payment by $300")
    assert rules_for(folder, "refinance/bad.subject.j2") == {"subject_figures"}


def test_math_in_an_email_outside_the_math_tracks_is_caught(folder: Path) -> None:
    write_email(folder, "anniversary", "bad", text=f"Hi.\n\n{MATH_TXT}\n\n{FOOTER_TXT}")
    problems = [p for p in lint_templates(folder) if p.rule == "math_not_allowed"]
    assert {p.path for p in problems} == {"_shared/rate_math.txt.j2"}
    assert "anniversary/bad.txt.j2" in problems[0].message


# --- blocklist and protected classes ---------------------------------------------------------


def test_pre_approved_is_caught(folder: Path) -> None:
    write(folder, "refinance/bad.sms.j2", GOOD_SMS.replace("rates have moved", "pre-approved!"))
    problems = problems_for(folder, "refinance/bad.sms.j2")
    assert [(p.rule, p.message) for p in problems] == [
        ("blocklist", "uses 'pre-approved' ('pre-approved')")
    ]


def test_another_lenders_name_is_caught(folder: Path) -> None:
    write_email(
        folder,
        "refinance",
        "bad",
        text="Unlike Rocket Mortgage, we call back.\n\n" + FOOTER_TXT,
    )
    problems = problems_for(folder, "refinance/bad.txt.j2")
    assert [(p.rule, p.message) for p in problems] == [
        ("other_lender", "names another lender ('Rocket Mortgage')")
    ]


def test_blocklist_in_an_html_part_is_reported_on_that_part(folder: Path) -> None:
    body = "<p>Our <b>lowest rates</b> ever.</p>"
    write_email(folder, "anniversary", "bad", html=GOOD_HTML.replace("<p>Hi.</p>", body))
    assert rules_for(folder, "anniversary/bad.html.j2") == {"blocklist"}


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("You are PREAPPROVED", "blocklist"),
        ("Results guaranteed", "blocklist"),
        ("You have been approved", "blocklist"),
        ("A new government program for homeowners", "blocklist"),
        ("VA-approved lender", "blocklist"),
        ("an FHA approved refinance", "blocklist"),
        ("the lowest rate in town", "blocklist"),
        ("Official notice about your loan", "blocklist"),
        ("a no-cost refinance", "no_cost"),
        ("no closing costs", "no_cost"),
        ("better than wells fargo", "other_lender"),
        ("loanDepot", "other_lender"),
        ("Mr. Cooper", "other_lender"),
    ],
)
def test_blocklist_phrases(text: str, rule: str) -> None:
    assert rule in {found_rule for found_rule, _ in blocked_phrases(text)}


@pytest.mark.parametrize(
    "text",
    [
        "every loan is subject to underwriting and credit approval",
        "Chasen and Guilder are not lenders",
        "a better rate could lower your cost",
        "approvedness",
    ],
)
def test_ordinary_words_are_not_blocked(text: str) -> None:
    assert blocked_phrases(text) == []


def test_no_cost_is_allowed_when_configured_true(folder: Path) -> None:
    write(folder, "refinance/bad.sms.j2", GOOD_SMS.replace("rates have moved", "no-cost refi"))
    assert rules_for(folder, "refinance/bad.sms.j2") == {"no_cost"}
    assert rules_for(folder, "refinance/bad.sms.j2", no_cost_allowed=True) == set()


def test_template_using_borrower_race_is_caught(folder: Path) -> None:
    write(folder, "refinance/bad.sms.j2", GOOD_SMS + "{% if borrower.race %} {% endif %}")
    problems = problems_for(folder, "refinance/bad.sms.j2")
    assert "protected_attribute" in {p.rule for p in problems}
    assert any("'race'" in p.message for p in problems)


@pytest.mark.parametrize(
    "expression",
    ["borrower['religion']", "borrower.marital_status", "date_of_birth", "borrower.age"],
)
def test_protected_attributes_in_any_form_are_caught(folder: Path, expression: str) -> None:
    write(folder, "anniversary/call.task.j2", "Call them.{% if " + expression + " %}{% endif %}")
    assert "protected_attribute" in rules_for(folder, "anniversary/call.task.j2")


def test_loan_age_is_not_mistaken_for_a_borrowers_age(folder: Path) -> None:
    write(folder, "refinance/call.task.j2", "Loan is {{ reason.loan_age_years }} years old.")
    assert rules_for(folder, "refinance/call.task.j2") == set()


# --- start-up --------------------------------------------------------------------------------


def test_render_error_is_a_lint_problem(folder: Path) -> None:
    write(folder, "refinance/bad.sms.j2", GOOD_SMS + "{{ borrower.middle_name }}")
    problems = problems_for(folder, "refinance/bad.sms.j2")
    assert [p.rule for p in problems] == ["render_error"]
    assert "borrower.middle_name" in problems[0].message


def test_assert_templates_clean_lists_every_problem(folder: Path) -> None:
    write(folder, "refinance/bad.sms.j2", GOOD_SMS.replace("rates have moved", "a $200 gift"))
    write(folder, "stalled/bad.sms.j2", GOOD_SMS.replace("rates have moved", "guaranteed"))
    with pytest.raises(TemplateLintError) as caught:
        assert_templates_clean(folder)
    message = str(caught.value)
    assert message.startswith("2 template problem(s):")
    assert "refinance/bad.sms.j2: [sms_figures]" in message
    assert "stalled/bad.sms.j2: [blocklist]" in message
    assert len(caught.value.problems) == 2


def test_unknown_files_in_a_track_folder_are_reported(folder: Path) -> None:
    write(folder, "refinance/notes.md", "draft")
    assert rules_for(folder, "refinance/notes.md") == {"unknown_file"}


# --- internal rate wording ---------------------------------------------------------------------

# Yesterday's refinance intro: the batch's describe() text went straight into the email.
OLD_INTRO = (
    "Based on today's {{ reason.rate_product }} rate ({{ reason.rate_source }}), here is more."
)


def test_an_email_rendering_the_internal_rate_description_is_caught(folder: Path) -> None:
    html = GOOD_HTML.replace("<p>Hi.</p>", f"<p>{OLD_INTRO}</p>")
    write_email(folder, "refinance", "intro", text=OLD_INTRO + "\n\n" + FOOTER_TXT, html=html)
    for part in ("txt", "html"):
        problems = problems_for(folder, f"refinance/intro.{part}.j2")
        assert {"internal_rate_source", "internal_wording"} <= {p.rule for p in problems}
        words = " ".join(p.message for p in problems if p.rule == "internal_wording")
        for named in ("'offset'", "'PMMS'", "'2026-09-24'", "rate arithmetic"):
            assert named in words


def test_describe_text_typed_into_a_template_is_caught_after_rendering(folder: Path) -> None:
    """No variable to spot: the rendered words themselves fail."""
    text = "Our 30-year rate 5.75% set manually (2026-12-02) + 0.00 offset = 5.75%, 5.9 % APR.\n\n"
    write_email(folder, "refinance", "typed", text=text + FOOTER_TXT)
    problems = problems_for(folder, "refinance/typed.txt.j2")
    assert [p.rule for p in problems] == ["internal_wording"] * 4
    assert "'set manually'" in problems[1].message


def test_an_sms_naming_a_snapshot_field_is_caught(folder: Path) -> None:
    write(folder, "refinance/intro.sms.j2", "Hi, see rate_source at {{ links.savings }}" + SIGNOFF)
    assert "internal_wording" in rules_for(folder, "refinance/intro.sms.j2")


def test_the_call_task_may_quote_the_internal_description(folder: Path) -> None:
    """The loan officer reads describe() text every day; only borrowers must not."""
    copy_track(folder, "refinance")
    assert problems_for(folder, "refinance/call.task.j2") == []


@pytest.mark.parametrize(
    "text",
    [
        "Rates as of September 24, 2026; reply to this email.",
        "Call (503) 555-0142 or see https://go.example.com/s/2026-09-24=abc",
        "Your loan turns 5 years old on 9/24; principal and interest only.",
    ],
)
def test_ordinary_borrower_text_is_not_internal_wording(text: str) -> None:
    assert internal_wording(text) == []


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Freddie Mac PMMS 30-year fixed average 6.00% (2026-09-24)", "index"),
        ("6.00% via FRED MORTGAGE30US", "index"),
        ("the index plus our margin", "index"),
        ("6.00% - 0.25 offset", "offset"),
        ("(2026-09-24) + 0.25", "arithmetic"),
        ("= 6.25%", "arithmetic"),
        ("offer_rate 6.25", "field name"),
        ("30-year rate 6.50% from rates.csv (2026-09-25)", "ISO date"),
    ],
)
def test_each_kind_of_internal_wording_is_caught(text: str, label: str) -> None:
    assert any(label in found for found in internal_wording(text)), internal_wording(text)
