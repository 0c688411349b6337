"""Template variants (A/B): which of a step's templates a person gets, decided by a hash.

A step may declare ``variants = { b = 0.5 }`` in its track; variant ``b``'s files sit beside the
base's (``templates/refinance/intro.b.sms.j2``) and the base template is variant ``a``, with the
rest of the weight. One experiment is one track step (``refinance/1``). A person's variant is
a fixed place in [0, 1), the holdout's scheme (``core.holdout.holdout_score``: the first 8 bytes
of a sha256 read as a number) salted with ``variant:{experiment}:`` instead of the holdout's
``{trigger}:``, read against the arms' cumulative weights, ``a`` first, then the others by name.
The same person gets the same variant every time, on every worker, and the experiments and the
holdout are independent of one another. (The hash is repeated here, not imported: core.holdout
sits with the enrolment, above the tracks in the layers.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from core.tracks.config import BASE_VARIANT, Step

__all__ = ["BASE_VARIANT", "assign_variant", "experiment_name", "variant_for", "variant_place"]

_SCALE = float(2**64)


def experiment_name(track: str, step_number: int) -> str:
    """The experiment a track step runs, e.g. 'refinance/1'."""
    return f"{track}/{step_number}"


def variant_place(experiment: str, contact_id: int) -> float:
    """The person's fixed place in [0, 1) for this experiment."""
    digest = hashlib.sha256(f"variant:{experiment}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign_variant(experiment: str, contact_id: int, weights: Mapping[str, float]) -> str:
    """The arm this person gets in this experiment (`weights`: arm -> share, summing to 1)."""
    place = variant_place(experiment, contact_id)
    arms = [BASE_VARIANT, *sorted(name for name in weights if name != BASE_VARIANT)]
    edge = 0.0
    for arm in arms:
        edge += weights.get(arm, 0.0)
        if place < edge:
            return arm
    return arms[-1]  # a place a float rounding left just above the last edge


def variant_for(track: str, step: Step, contact_id: int) -> str | None:
    """The person's variant of this step, or None when the step runs no experiment."""
    if not step.variants:
        return None
    return assign_variant(experiment_name(track, step.number), contact_id, step.weights)
