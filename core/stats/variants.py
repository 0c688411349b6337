"""The A/B readout: each template experiment's arms side by side, with their significance and a
sample-ratio check (core.tracks.variants assigns the arms).

Per experiment (one track step, ``refinance/1``) and arm (``a`` is the step's own template):

- ``messaged``: distinct people with a touch of that arm sent, sandboxed or delivered in the
  period (the person is the unit: the arm is drawn per person).
- ``replied`` (the primary metric, ``reply_rate`` = replied / messaged): of them, those with a
  warm reply received from their first such touch up to ``now``.
- ``funded``: of them, those credited with a funded loan (``funded_credits``) for an enrollment
  that got the arm's touch, funded by ``now``.

Each other arm is compared with ``a`` by the pooled two-proportion z-test on the reply rate
(two-sided p-value). The sample-ratio check is the chi-square goodness of fit of the people
messaged against the configured weights: p < 0.001 says the split is not what the assignment
would give (a bug, or one arm failing more often before it is sent), and the comparison is not
to be trusted. Below ``min_sample`` people in any arm the readout says "not enough data yet" and
gives no p-value. Standard library only (statistics.NormalDist).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session

from core.attribution.models import FundedCredit
from core.inbound.models import Reply
from core.outreach import models as outbox
from core.outreach.models import Enrollment, Message
from core.tracks.config import BASE_VARIANT, Track, load_tracks
from core.tracks.variants import experiment_name

MIN_SAMPLE = 100  # people per arm before any p-value is shown
SRM_THRESHOLD = 0.001
ALPHA = 0.05
NOT_ENOUGH = "not enough data yet"
SRM_FLAG = "sample ratio mismatch: check assignment"
_REACHED = (outbox.SENT, outbox.SANDBOX, outbox.DELIVERED)
_NORMAL = NormalDist()


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test (None without people in both)."""
    if n1 == 0 or n2 == 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:  # nobody replied, or everybody: the rates are equal
        return 1.0
    z = (x2 / n2 - x1 / n1) / se
    return 2 * _NORMAL.cdf(-abs(z))  # = 2 (1 - Φ(|z|)), without the cancellation


def chi_square_p(x2: float, df: int) -> float:
    """P(χ² ≥ x2) with `df` degrees of freedom (closed forms for whole df)."""
    if x2 <= 0:
        return 1.0
    root = math.sqrt(x2)
    if df % 2 == 0:  # e^{-x/2} Σ_{i<df/2} (x/2)^i / i!
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= x2 / 2 / i
            total += term
        return min(1.0, math.exp(-x2 / 2) * total)
    # Odd: 2(1 - Φ(√x)) + 2φ(√x) Σ_{r=1}^{(df-1)/2} x^{(2r-1)/2} / (1·3···(2r-1)); df 1 is the
    # normal's two tails.
    tail, term, total = 2 * _NORMAL.cdf(-root), root, 0.0
    for r in range(1, (df - 1) // 2 + 1):
        if r > 1:
            term *= x2 / (2 * r - 1)
        total += term
    return min(1.0, tail + 2 * _NORMAL.pdf(root) * total)


def srm_p(observed: Mapping[str, int], weights: Mapping[str, float]) -> float | None:
    """The sample-ratio check's p-value: observed people per arm against the weights."""
    n = sum(observed.values())
    if n == 0 or len(weights) < 2:
        return None
    x2 = sum((observed.get(arm, 0) - n * w) ** 2 / (n * w) for arm, w in weights.items() if w > 0)
    return chi_square_p(x2, len(weights) - 1)


@dataclass
class Arm:
    """One arm's people and outcomes."""

    variant: str
    weight: float | None  # the configured share; None when the step no longer declares it
    messaged: int = 0
    replied: int = 0
    funded: int = 0

    @property
    def reply_rate(self) -> float | None:
        """Replied / messaged."""
        return round(self.replied / self.messaged, 4) if self.messaged else None

    @property
    def funded_rate(self) -> float | None:
        """Funded / messaged."""
        return round(self.funded / self.messaged, 4) if self.messaged else None

    def as_json(self) -> dict[str, Any]:
        """The arm as a JSON object."""
        return {"variant": self.variant, "weight": self.weight, "messaged": self.messaged,
                "replied": self.replied, "reply_rate": self.reply_rate, "funded": self.funded,
                "funded_rate": self.funded_rate}  # fmt: skip


@dataclass
class Readout:
    """One experiment: its arms, each other arm's p-value against a, the sample-ratio check."""

    experiment: str
    track: str
    step: int
    channel: str
    template: str
    arms: list[Arm]
    p_values: dict[str, float | None] = field(default_factory=dict)  # arm -> p vs a
    srm_p_value: float | None = None
    flag: str | None = None  # NOT_ENOUGH or SRM_FLAG
    summary: str = ""

    def as_json(self) -> dict[str, Any]:
        """The experiment as a JSON object."""
        return {
            "experiment": self.experiment, "track": self.track, "step": self.step,
            "channel": self.channel, "template": self.template,
            "arms": [arm.as_json() for arm in self.arms], "p_values": self.p_values,
            "srm_p_value": self.srm_p_value, "flag": self.flag, "summary": self.summary,
        }  # fmt: skip


def judge(readout: Readout, *, min_sample: int = MIN_SAMPLE, alpha: float = ALPHA) -> Readout:
    """Fill the p-values, the sample-ratio check, the flag and the one-line summary."""
    arms = {arm.variant: arm for arm in readout.arms}
    base = arms.get(BASE_VARIANT)
    if base is None or len(arms) < 2 or min(a.messaged for a in arms.values()) < min_sample:
        readout.flag, readout.summary = NOT_ENOUGH, f"{NOT_ENOUGH} ({min_sample} people per arm)"
        return readout
    for name, arm in arms.items():
        if name != BASE_VARIANT:
            readout.p_values[name] = two_proportion_p(
                base.replied, base.messaged, arm.replied, arm.messaged
            )
    weights = {a.variant: a.weight for a in readout.arms if a.weight is not None}
    if len(weights) == len(arms):
        readout.srm_p_value = srm_p({a.variant: a.messaged for a in readout.arms}, weights)
    if readout.srm_p_value is not None and readout.srm_p_value < SRM_THRESHOLD:
        readout.flag, readout.summary = SRM_FLAG, SRM_FLAG
        return readout
    readout.summary = "; ".join(
        _compared(name, arms[name], base, p, alpha) for name, p in readout.p_values.items()
    )
    return readout


def _compared(name: str, arm: Arm, base: Arm, p: float | None, alpha: float) -> str:
    shown = "n/a" if p is None else f"{p:.3g}"
    if p is None or p >= alpha:
        return f"{name} vs {BASE_VARIANT}: no clear difference in replies yet (p = {shown})"
    more = (arm.reply_rate or 0) > (base.reply_rate or 0)
    return (
        f"{name} vs {BASE_VARIANT}: {name} gets {'more' if more else 'fewer'} replies (p = {shown})"
    )


def _counts(session: Session, since: datetime | None, now: datetime) -> list[Any]:
    """(track, step, channel, template, variant, messaged, replied, funded) per arm."""
    when = [Message.sent_at <= now] + ([Message.sent_at >= since] if since is not None else [])
    funded_by = now.astimezone(UTC).date()
    people = (
        select(
            Enrollment.track, Message.step, Message.channel, Message.template, Message.variant,
            Message.contact_id, func.min(Message.sent_at).label("first_at"),
            func.max(case((FundedCredit.id.is_not(None), 1), else_=0)).label("funded"),
        )
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
        .outerjoin(FundedCredit, and_(FundedCredit.enrollment_id == Message.enrollment_id,
                                      FundedCredit.funded_date <= funded_by))
        .where(Message.variant.is_not(None), Message.status.in_(_REACHED), *when)
        .group_by(Enrollment.track, Message.step, Message.channel, Message.template,
                  Message.variant, Message.contact_id)
        .subquery()
    )  # fmt: skip
    replied = exists().where(
        Reply.contact_id == people.c.contact_id,
        Reply.received_at >= people.c.first_at,
        Reply.received_at <= now,
    )
    arm = (people.c.track, people.c.step, people.c.channel, people.c.template, people.c.variant)
    replies = func.sum(case((replied, 1), else_=0))
    query = select(*arm, func.count(), replies, func.sum(people.c.funded)).group_by(*arm)
    return list(session.execute(query.order_by(*arm)))


def variant_readout(
    session: Session,
    *,
    since: datetime | None,
    now: datetime,
    tracks: Mapping[str, Track] | None = None,
    min_sample: int = MIN_SAMPLE,
    alpha: float = ALPHA,
) -> list[Readout]:
    """Every experiment the tracks declare or the messages of the period ran, judged.

    `tracks` (the configured ones; the shipped tracks by default) give the weights the
    sample-ratio check expects.
    """
    tracks = tracks if tracks is not None else load_tracks(check_templates=False)
    found: dict[str, Readout] = {}
    for track in tracks.values():
        for step in track.steps:
            if step.variants:
                name = experiment_name(track.name, step.number)
                arms = [Arm(variant, weight) for variant, weight in step.weights.items()]
                found[name] = Readout(name, track.name, step.number, step.channel,
                                      step.template, arms)  # fmt: skip
    for track, step, channel, template, variant, messaged, replied, funded in _counts(
        session, since, now
    ):
        name = experiment_name(track, step)
        readout = found.setdefault(name, Readout(name, track, step, channel, template, []))
        arm = next((a for a in readout.arms if a.variant == variant), None)
        if arm is None:  # an arm the configuration no longer declares
            arm = Arm(variant, None)
            readout.arms.append(arm)
        arm.messaged, arm.replied, arm.funded = int(messaged), int(replied or 0), int(funded or 0)
    return [
        judge(found[name], min_sample=min_sample, alpha=alpha)
        for name in sorted(found, key=lambda n: (found[n].track, found[n].step))
    ]
