"""Every trigger, by name, and the segment each one feeds."""

from __future__ import annotations

from core.triggers.base import Trigger
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
