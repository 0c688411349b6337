"""Every trigger, by name, and the segment each one feeds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from sqlalchemy.orm import Session

from core.triggers.base import Found, LeftAlone, Trigger, TriggerContext, people_left_alone
from core.triggers.calendar import ArmReset, ClosingAnniversary, FalloutAnniversary, LoanAge
from core.triggers.equity import FhaMip, PmiRemoval
from core.triggers.rate_drop import RateDrop

TRIGGERS: dict[str, Trigger] = {
    trigger.name: trigger
    for trigger in (
        RateDrop(),
        LoanAge(),
        ClosingAnniversary(),
        FalloutAnniversary(),
        ArmReset(),
        PmiRemoval(),
        FhaMip(),
    )
}
SEGMENTS: dict[str, Trigger] = {trigger.segment: trigger for trigger in TRIGGERS.values()}
SEGMENT_ALIASES = {"refi": "refinance"}


def segment_named(name: str) -> Trigger | None:
    """The trigger behind a segment name (Slack also accepts `refi`)."""
    return SEGMENTS.get(SEGMENT_ALIASES.get(name.lower(), name.lower()))


def find_all(
    ctx: TriggerContext,
    names: Sequence[str],
    *,
    for_segment: bool,
    readers: Callable[[], Session] | None = None,
) -> dict[str, Found]:
    """What each named trigger finds; with `readers`, two at a time on their own sessions.

    The readers see only committed data, so a caller passes them only when it has written
    nothing the triggers should see. The look-up of who to leave alone runs beside the first
    trigger's query, and the heaviest triggers go first, so the two cores finish together.
    """
    if readers is None or len(names) < 2:
        return {name: TRIGGERS[name].find(ctx, for_segment=for_segment) for name in names}

    def leave_alone() -> LeftAlone:
        with readers() as session:
            return people_left_alone(session, ctx.today)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="trigger") as pool:
        shared = replace(ctx, who_to_leave_alone=pool.submit(leave_alone).result)

        def find(name: str) -> Found:
            with readers() as session:
                return TRIGGERS[name].find(
                    replace(shared, session=session), for_segment=for_segment
                )

        ordered = sorted(names, key=lambda name: _HEAVIEST_FIRST.index(name))
        return dict(zip(ordered, pool.map(find, ordered), strict=True))


# On a typical book, the equity and rate triggers look at the most loans.
_HEAVIEST_FIRST = (
    "pmi_removal",
    "rate_drop",
    "fallout_anniversary",
    "fha_mip",
    "closing_anniversary",
    "arm_reset",
    "loan_age",
)
