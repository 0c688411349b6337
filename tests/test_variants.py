"""Template variants (A/B): a person always gets the same arm, the dispatcher renders and records
it, the variant passes the same lint, and the readout's statistics are the textbook ones."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

import math
import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path
from statistics import NormalDist

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.attribution.models import FundedCredit
from core.batches.models import APPROVED, Batch
from core.channels.email import SandboxEmailSender
from core.channels.sms import SandboxSmsSender
from core.outreach import models as outbox
from core.outreach.models import Enrollment, Message, TemplateVersion
from core.stats import funnel, variant_readout
from core.stats.variants import (
    NOT_ENOUGH,
    SRM_FLAG,
    Arm,
    Readout,
    chi_square_p,
    judge,
    srm_p,
    two_proportion_p,
)
from core.tracks.config import TrackConfigError, load_tracks
from core.tracks.lint import lint_templates, sample_context
from core.tracks.render import TEMPLATES_FOLDER, render_step
from core.tracks.smslength import sms_segments
from core.tracks.variants import assign_variant, variant_for
from tests.inbound.stored import received
from tests.outreach import (
    NOW,
    approved_book,
    run_dispatch,
    sandbox_settings,
    sessions,  # noqa: F401
)
from tests.triggers.factories import make_contact, make_enrollment, make_loan, shipped_tracks

PHI = NormalDist().cdf
INTRO = shipped_tracks()["refinance"].steps[0]


# --- assignment -----------------------------------------------------------------------------


def test_assignment_is_stable_and_near_the_weights_on_ten_thousand_people() -> None:
    halves = {b: assign_variant("refinance/1", b, {"a": 0.5, "b": 0.5}) for b in range(10_000)}
    again = {b: assign_variant("refinance/1", b, {"a": 0.5, "b": 0.5}) for b in range(10_000)}
    assert halves == again
    assert abs(Counter(halves.values())["b"] - 5_000) < 200  # 4 standard deviations
    thirds = Counter(
        assign_variant("stalled/1", b, {"a": 0.6, "b": 0.3, "c": 0.1}) for b in range(10_000)
    )
    assert abs(thirds["a"] - 6_000) < 200 and abs(thirds["c"] - 1_000) < 120
    # Another experiment draws afresh: its arms are independent of this one's.
    other = {b: assign_variant("refinance/3", b, {"a": 0.5, "b": 0.5}) for b in range(10_000)}
    same = sum(halves[b] == other[b] for b in range(10_000))
    assert abs(same - 5_000) < 200


def test_the_shipped_refinance_intro_runs_a_half_and_half_test() -> None:
    assert INTRO.weights == {"a": 0.5, "b": 0.5}
    assert variant_for("refinance", INTRO, 42) in ("a", "b")
    no_test = shipped_tracks()["refinance"].steps[1]
    assert no_test.weights == {} and variant_for("refinance", no_test, 42) is None


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"a": 0.5}, "other than 'a'"),
        ({"B": 0.5}, "short lower-case name"),
        ({"b": 0}, "between 0 and 1"),
        ({"b": 0.6, "c": 0.4}, "add up to less than 1"),
        ({"c": 0.5}, "intro.c.sms.j2 does not exist"),
    ],
)
def test_bad_variants_are_refused_naming_the_step(variants: dict, message: str) -> None:
    step = {"delay_days": 0, "channel": "sms", "template": "intro", "variants": variants}
    with pytest.raises(TrackConfigError, match="refinance") as caught:
        load_tracks({"refinance": {"steps": [step]}})
    assert message in str(caught.value)


# --- the variant's text ---------------------------------------------------------------------


def test_the_variant_passes_the_same_lint_and_length_check_as_the_base() -> None:
    assert not [p for p in lint_templates() if ".b." in p.path]
    context = sample_context("refinance")
    base = render_step(track="refinance", template="intro", channel="sms", context=context)
    b = render_step(
        track="refinance", template="intro", channel="sms", context=context, variant="b"
    )
    assert b.variant == "b" and b.sms_body != base.sms_body
    assert b.version_hash != base.version_hash and "refinance/intro.b.sms.j2" in b.source
    assert sms_segments(b.sms_body or "")[1] <= 2
    assert b.sms_body and b.sms_body.endswith(
        "Alexandra Montgomery-Whitby, Evergreen Mountain Home Lending, NMLS 7654321. "
        "Reply STOP to opt out"
    )
    # Variant a is the base itself: the same text and the same stored version.
    a = render_step(
        track="refinance", template="intro", channel="sms", context=context, variant="a"
    )
    assert (a.sms_body, a.version_hash) == (base.sms_body, base.version_hash)


def test_a_variant_breaking_a_rule_is_caught_like_a_base_template(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES_FOLDER / "_shared", folder / "_shared")
    shutil.copytree(TEMPLATES_FOLDER / "refinance", folder / "refinance")
    (folder / "refinance" / "intro.c.sms.j2").write_text(
        "{{ borrower.first_name }}, save $300 a month: {{ links.savings }}"
    )
    (folder / "refinance" / "nobase.b.sms.j2").write_text("hi")
    rules = {(p.path, p.rule) for p in lint_templates(folder)}
    assert ("refinance/intro.c.sms.j2", "sms_figures") in rules
    assert ("refinance/intro.c.sms.j2", "sms_identification") in rules
    assert ("refinance/intro.c.sms.j2", "sms_stop") in rules
    assert ("refinance/nobase.b.sms.j2", "variant_without_base") in rules


# --- the dispatcher and the funnel ----------------------------------------------------------


def test_a_dispatched_refinance_intro_records_and_renders_its_variant(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    book = approved_book(sessions, [{"first_name": f"Pat{n}"} for n in range(12)])
    sms = SandboxSmsSender()

    report = run_dispatch(sessions, sandbox_settings(database_url), sms, SandboxEmailSender())

    assert report.sent == 12
    intros = [m for m in book.messages() if m.step == 1]
    arms = {m.contact_id: m.variant for m in intros}
    assert set(arms.values()) == {"a", "b"}  # 12 people: both arms drawn
    for message in intros:
        assert message.status == outbox.SANDBOX
        assert message.variant == variant_for("refinance", INTRO, message.contact_id)
        first = book.contact(message.contact_id).first_name
        opening = {"a": "mortgage rates are now lower", "b": "rates have dropped since"}
        assert (message.body or "").startswith(f"{first}, {opening[message.variant or '']}")
    assert sorted(s.body for s in sms.sent) == sorted(m.body or "" for m in intros)
    with sessions() as session:
        names = {
            session.get(TemplateVersion, m.template_version_id).template  # type: ignore[union-attr]
            for m in intros
        }
        assert names == {"intro", "intro.b"}
        # The same-day email ran no experiment (held by the daily cap, rendered all the same).
        assert {m.variant for m in book.messages() if m.step == 2} == {None}
        # Grouped by variant, the funnel counts each arm's people.
        result = funnel(session, since=None, by="variant", now=NOW)
    rows = {row.group: row for row in result.rows}
    assert set(rows) == {"refinance/1:a", "refinance/1:b"}
    for arm in ("a", "b"):
        people = sum(v == arm for v in arms.values())
        counts = rows[f"refinance/1:{arm}"].counts
        assert (counts["enrolled"], counts["sent"], counts["reached"]) == (people, people, people)
    assert result.totals.counts["enrolled"] == 12


def test_funnel_by_variant_puts_enrollments_without_an_experiment_in_their_own_row(
    session: Session,
) -> None:
    batch = _batch(session)
    _person(session, batch, variant="b", replied=True)
    _person(session, batch, variant=None)
    _person(session, batch, variant=None, status=outbox.SCHEDULED)
    result = funnel(session, since=None, by="variant", now=NOW)
    rows = {row.group: row.counts for row in result.rows}
    assert set(rows) == {"refinance/1:b", "refinance (no variant)"}
    assert (rows["refinance/1:b"]["enrolled"], rows["refinance/1:b"]["replied"]) == (1, 1)
    none = rows["refinance (no variant)"]
    assert (none["enrolled"], none["sent"]) == (2, 1)


# --- the readout ----------------------------------------------------------------------------


def _batch(session: Session) -> Batch:
    batch = Batch(trigger="rate_drop", segment="refinance", status=APPROVED, size=0,
                  created_at=NOW - timedelta(days=30), decided_at=NOW - timedelta(days=30),
                  decided_by="manager")  # fmt: skip
    session.add(batch)
    session.flush()
    return batch


def _person(
    session: Session, batch: Batch, *, variant: str | None, replied: bool = False,
    funded: bool = False, status: str = outbox.SENT,
) -> Enrollment:  # fmt: skip
    """One person enrolled 10 days ago, their intro text (of `variant`) sent 10 days ago."""
    at = NOW - timedelta(days=10)
    contact = make_contact(session, lo=None)
    enrollment = make_enrollment(session, contact, make_loan(session, contact), batch, at,
                                 track="refinance")  # fmt: skip
    sent = status == outbox.SENT
    session.add(Message(
        enrollment_id=enrollment.id, contact_id=contact.id, step=1, channel="sms",
        template="intro", status=status, due_at=at, sent_at=at if sent else None, updated_at=at,
        variant=variant if sent else None,
    ))  # fmt: skip
    session.flush()
    if replied:
        received(session, sender=contact.phone or "", body="yes", contacts=[contact],
                 now=at + timedelta(days=1))  # fmt: skip
    if funded:
        session.add(FundedCredit(loan_id=None, contact_id=contact.id,
                                 enrollment_id=enrollment.id, funded_date=NOW.date(),
                                 credited_at=NOW, how="marked", why="test"))  # fmt: skip
        session.flush()
    return enrollment


def hand_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """The pooled two-proportion z-test, written out."""
    p = (x1 + x2) / (n1 + n2)
    z = (x2 / n2 - x1 / n1) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return 2 * (1 - PHI(abs(z)))


def test_the_readout_on_known_counts_is_the_hand_computed_z_test(session: Session) -> None:
    batch = _batch(session)
    for n in range(120):  # a: 12 of 120 replied
        _person(session, batch, variant="a", replied=n < 12)
    for n in range(130):  # b: 26 of 130 replied, 3 funded
        _person(session, batch, variant="b", replied=n < 26, funded=n >= 127)
    _person(session, batch, variant="b", status=outbox.SUPPRESSED)  # never messaged

    (readout,) = variant_readout(session, since=None, now=NOW)

    assert (readout.experiment, readout.channel, readout.template) == (
        "refinance/1",
        "sms",
        "intro",
    )
    a, b = readout.arms
    assert (a.variant, a.messaged, a.replied, a.reply_rate) == ("a", 120, 12, 0.1)
    assert (b.variant, b.messaged, b.replied, b.funded) == ("b", 130, 26, 3)
    assert readout.p_values["b"] == pytest.approx(hand_p(12, 120, 26, 130), abs=1e-12)
    assert 0.02 < readout.p_values["b"] < 0.03  # 10 % against 20 %: significant at 5 %
    # 120 against 130 at half and half: (5² + 5²) / 125 = 0.4, one degree of freedom.
    assert readout.srm_p_value == pytest.approx(2 * (1 - PHI(math.sqrt(0.4))), abs=1e-12)
    assert readout.flag is None and "b gets more replies" in readout.summary
    json = readout.as_json()
    assert json["arms"][1]["reply_rate"] == 0.2 and json["flag"] is None

    # A week later nothing new was sent: the period holds no one, so not enough data yet.
    (later,) = variant_readout(session, since=NOW - timedelta(days=7), now=NOW)
    assert later.flag == NOT_ENOUGH and later.p_values == {} and later.srm_p_value is None


def _readout(counts: dict[str, tuple[int, int]]) -> Readout:
    arms = [Arm(name, 0.5, messaged=n, replied=x) for name, (n, x) in counts.items()]
    return judge(Readout("refinance/1", "refinance", 1, "sms", "intro", arms))


def test_sample_ratio_mismatch_flags_sixty_forty_but_not_fifty_and_a_half() -> None:
    skewed = _readout({"a": (6_000, 600), "b": (4_000, 400)})
    assert skewed.flag == SRM_FLAG and skewed.summary == SRM_FLAG
    assert skewed.srm_p_value is not None and skewed.srm_p_value < 1e-50
    fine = _readout({"a": (5_050, 505), "b": (4_950, 495)})
    assert fine.flag is None
    # (50² + 50²) / 5000 = 1: the normal's two tails beyond 1.
    assert fine.srm_p_value == pytest.approx(2 * (1 - PHI(1.0)), abs=1e-12)
    assert fine.summary == "b vs a: no clear difference in replies yet (p = 1)"
    assert _readout({"a": (99, 10), "b": (130, 26)}).flag == NOT_ENOUGH


def test_chi_square_tails_match_the_known_critical_values() -> None:
    # The 95th percentiles of chi-square with 1…4 degrees of freedom.
    for df, critical in ((1, 3.841459), (2, 5.991465), (3, 7.814728), (4, 9.487729)):
        assert chi_square_p(critical, df) == pytest.approx(0.05, abs=1e-6)
    assert srm_p({"a": 600, "b": 300, "c": 100}, {"a": 0.6, "b": 0.3, "c": 0.1}) == 1.0
    assert two_proportion_p(0, 50, 0, 50) == 1.0 and two_proportion_p(1, 0, 1, 10) is None
