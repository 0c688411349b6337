"""What a live system remembers between evaluations, kept in memory for the replay, as arrays.

Only that: each person's best loan per trigger, an occasion (a milestone, an anniversary, an
ARM reset, one rate-drop offer) firing once, and the rate-drop cooldown. Nobody is enrolled,
so nobody is held back by a running track or by replies.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from core.backtest.base import Bools
from core.triggers.columns import Ints

Rows = NDArray[np.intp]
_NEVER = np.iinfo(np.int64).min  # no occasion fired yet
_NO_WAVE = np.iinfo(np.int64).max  # no wave inside the cooldown


def best_per_person(people: Ints, rank: Ints, loans: Ints, alone: Bools | None = None) -> Rows:
    """Each person's best-ranked entry (ties: the newest loan), as `best_per_contact` picks.

    `alone` marks the entries of people with a single loan, who need no sorting.
    """
    if alone is not None:
        shared = np.flatnonzero(~alone)
        best = best_per_person(people[shared], rank[shared], loans[shared])
        return np.concatenate([np.flatnonzero(alone), shared[best]])
    if not len(people):
        return np.zeros(0, dtype=np.intp)
    order = np.lexsort((-loans, -rank, people))
    ordered = people[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return order[first]


class Occasions:
    """The occasion each key (a loan; a person and product for rate drops) last fired for.

    An occasion fires once. For a given key the occasion only moves forward with the weeks
    (a loan's age, its next anniversary's year, the fallout offset reached, the reset date,
    the offer's survey date), so "fired for this occasion before" is "fired for it last".
    """

    def __init__(self, keys: int) -> None:
        self.last = np.full(keys, _NEVER, dtype=np.int64)

    def fresh(self, keys: Ints, occasions: Ints) -> Bools:
        """True where the key has not fired for this occasion yet."""
        return self.last[keys] != occasions

    def record(self, keys: Ints, occasions: Ints) -> None:
        """Remember that these keys fired for these occasions."""
        self.last[keys] = occasions


def offer_units(rates: list[Decimal]) -> int:
    """A scale turning every one of these rates (and points) into an exact whole number."""
    places = max((-rate.as_tuple().exponent for rate in rates), default=0)
    return 10 ** max(int(places), 0)


class Cooldown:
    """Rate-drop waves: a person put in a batch is held back for `days` unless the offer fell
    a further `next_wave` below the lowest offer they were messaged at in that time.

    Offers are whole numbers of one scale (`offer_units`), so the comparison is exact.
    """

    def __init__(self, *, days: int, next_wave: int, people: int) -> None:
        self.days = days
        self.next_wave = next_wave
        self.people = people
        self.waves: deque[tuple[int, Ints, Ints]] = deque()  # (day, people, offers), in order

    def cooled(self, day: int, people: Ints, offers: Ints) -> Bools:
        """False for someone messaged inside the cooldown with no further drop since."""
        while self.waves and self.waves[0][0] <= day - self.days:
            self.waves.popleft()  # days only move forward: an old wave never counts again
        if not self.waves:
            return np.ones(len(people), dtype=bool)
        lowest = np.full(self.people, _NO_WAVE, dtype=np.int64)
        for _, messaged, at_offer in self.waves:
            np.minimum.at(lowest, messaged, at_offer)
        recent = lowest[people]
        return (recent == _NO_WAVE) | (offers <= recent - self.next_wave)

    def record(self, day: int, people: Ints, offers: Ints) -> None:
        """Remember who was messaged on `day` at which offer."""
        if len(people):
            self.waves.append((day, people, offers))
