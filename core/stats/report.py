"""The funnel: what outreach did in a period, by segment, trigger, loan officer or A/B variant
(SPEC §2.8, §4).

Every column counts what happened in the period, from ``since`` (None: the beginning) up to and
including ``now``. Each event is attributed to exactly one enrollment, and through it to one
group, so a row never counts another group's work and the totals are the rows' sums.

An enrollment's group: ``segment`` is its batch's segment, ``trigger`` its batch member's
trigger, ``lo`` the loan officer of the loan it was enrolled for (else the person's own loan
officer), shown by email (``unassigned`` when there is none), ``variant`` the A/B arm of its
first touch that ran an experiment (``refinance/1:b``: track, step, variant; ``a`` is the step's
own template; ``refinance (no variant)`` when none did, e.g. its first touch is not rendered
yet). An enrollment in two experiments counts under the earlier step's: core.stats.variants
reads every experiment on its own, with its significance and sample-ratio check.

Columns (``messages`` below are SMS and email touches; call tasks are not messages here):

- ``enrolled``: enrollments whose ``enrolled_at`` is in the period.
- ``sent``: messages the provider took (``sent``, ``sandbox``, ``delivered``, ``undelivered``)
  whose ``sent_at`` is in the period. ``unknown`` (beside it): the provider's answer was lost.
- ``delivered``: of those, the ones the carrier confirmed (SMS status callbacks; email and the
  sandbox never confirm, so they stay ``sent``).
- ``failed``: messages ``failed`` (refused, retries exhausted) or ``undelivered`` (the carrier
  gave up), timed by ``sent_at``, else by when the failure was written. An undelivered text is
  in ``sent`` and in ``failed``.
- ``suppressed``: messages a rule forbade for good, timed by when that was written;
  ``suppressed_by_rule`` splits them by rule (opted_out, no_consent, bad_number…).
- ``opened`` / ``clicked``: distinct messages with a human open / click in the period.
  ``machine_opened`` / ``machine_clicked``: distinct messages whose only opens / clicks in the
  period were machines' (privacy proxies, link scanners); never in ``opened`` / ``clicked``.
- ``visited``: distinct enrollments with a human savings-page visit in the period.
- ``replied``: distinct enrollments with a warm reply received in the period. A reply belongs
  to the enrollment of the touch it answered, else to the person's latest enrollment begun by
  the time it arrived; replies from outside the book or from people never enrolled count nowhere.
- ``claimed``: distinct enrollments with a reply claimed by a loan officer in the period (a
  reply received earlier and claimed now counts here, not in ``replied``);
  ``median_minutes_to_claim``: the median of those claims' minutes from reply to claim;
  ``replied_claimed`` (beside them): of the ``replied`` enrollments, those whose reply has been
  claimed by ``now``.
- ``funded``: distinct enrollments credited with a funded loan (``funded_credits``, see
  core.attribution.service for the rule: the latest enrollment touched on or before the funded
  date, its last touch within ``[attribution] window_days``, the application not before its
  first touch; or a loan officer's "Mark funded") whose ``funded_date`` is in the period (UTC
  days). ``funded_volume`` (beside it): the credited loans' amounts in dollars (a "Mark funded"
  whose loan is not imported yet adds nothing to it).
- ``opted_out``: distinct enrollments whose person opted out in the period (an ``opted_out``
  consent event on any channel, from any source), given to their latest enrollment begun by then.
- ``reached`` (beside them): distinct enrollments with a message sent, sandboxed or delivered in
  the period; the denominator of the reply and opt-out rates.
- ``reached_settled``: of those, the ones whose outcome is settled: not still ``active`` with
  ``enrolled_at`` less than ``window_days`` before ``now`` (a sequence still running inside its
  attribution window may yet fund: counting it would drag the funded rate down). The denominator
  of the funded rate; a funded enrollment's sequence is stopped, so it is always settled.

``rates``: open = opened / emails sent, click = clicked / sent, reply = replied / reached,
claim = replied_claimed / replied, funded = funded / reached_settled, opt_out = opted_out /
reached (None when the denominator is 0; a reply to a touch sent before the period can lift a
rate). Everything is counted with GROUP BY in the database, in one statement.

``lift`` (core.stats.lift): per trigger, the funded rate of the messaged people against the
held-out ones of the batches approved in the period, and the difference with its 95 % interval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.book.models import LoanOfficer
from core.config import AttributionConfig
from core.outreach.models import Enrollment
from core.stats.lift import holdout_lift
from core.stats.queries import Queries
from core.stats.rows import BY, UNASSIGNED, Funnel, FunnelRow, _shown

WINDOW_DAYS = AttributionConfig().window_days


def funnel(
    session: Session,
    *,
    since: datetime | None,
    by: str,
    now: datetime,
    period: str | None = None,
    window_days: int = WINDOW_DAYS,
) -> Funnel:
    """The funnel from `since` (None: all time) to `now`, grouped by segment, trigger, lo or
    variant, with the holdout lift per trigger (`window_days`: the attribution window)."""
    if by not in BY:
        raise ValueError(f"by must be segment, trigger or lo, or variant, not {_shown(by)}")
    tallies: dict[Any, FunnelRow] = {}
    first = session.scalar(select(func.min(Enrollment.enrolled_at)))
    if first is not None:  # nobody was ever enrolled: nothing to count
        Queries(session, since=since, now=now, by=by, first=first, window_days=window_days).count(
            tallies
        )
    rows = _labelled(session, tallies, by)
    totals = FunnelRow(group="total")
    for each in rows:
        totals.add(each)
    lift = holdout_lift(session, since=since, now=now, window_days=window_days)
    return Funnel(since=since, until=now, by=by, rows=rows, totals=totals, period=period, lift=lift)


def _labelled(session: Session, tallies: dict[Any, FunnelRow], by: str) -> list[FunnelRow]:
    """Rows in a stable order; loan officers shown by email (name beside it)."""
    if by != "lo":
        return [tallies[key] for key in sorted(tallies)]
    ids = [key for key in tallies if key is not None]
    officers = {
        officer.id: officer
        for officer in session.scalars(select(LoanOfficer).where(LoanOfficer.id.in_(ids)))
    }
    for key, row in tallies.items():
        officer = officers.get(key) if key is not None else None
        row.group = officer.email if officer else UNASSIGNED
        row.name = officer.name if officer else ""
    # People read loan officers by name; the unassigned row comes last.
    return sorted(tallies.values(), key=lambda r: (r.group == UNASSIGNED, r.name or "", r.group))
