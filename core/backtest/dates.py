"""The date triggers over the book columns, weekly: the rules of `core.triggers.calendar`."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from core.backtest.base import NO_DAY, STATUSES, BookColumns, Bools, Qualified, Week
from core.book.models import DENIED, FUNDED
from core.config import Config
from core.rates.service import Offer
from core.triggers.base import add_years
from core.triggers.calendar import FALLOUTS
from core.triggers.columns import Ints, date_of, day_of


def year_and_month_day(days: Ints) -> tuple[Ints, Ints]:
    """The calendar year and month * 100 + day (Feb 29 is 229) of each day number."""
    as_dates = days.astype("datetime64[D]")
    years = as_dates.astype("datetime64[Y]")
    months = as_dates.astype("datetime64[M]")
    month = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
    day = (as_dates - months.astype("datetime64[D]")).astype(np.int64) + 1
    return years.astype(np.int64) + 1970, month * 100 + day


class _DateTrigger:
    """Shared: a pool of book rows sorted by the day (or month and day) a trigger looks at.

    A week's windows are then slices of the pool (a binary search each), not a pass over it.
    """

    name = ""

    def __init__(
        self, book: BookColumns, pool: Bools, key: Ints, *, after_fallout: bool = False
    ) -> None:
        rows = np.flatnonzero(pool & book.reachable)
        self.rows = rows[np.argsort(key[rows], kind="stable")]
        self.key = key[self.rows]
        self.shown_from, self.shown_until = book.visible(self.rows, after_fallout=after_fallout)

    def _between(self, windows: list[tuple[int, int]]) -> Ints:
        """Pool indices whose key lies in any of the (first, last) windows, each once."""
        if not windows:
            return np.zeros(0, dtype=np.int64)
        first, last = np.asarray(windows, dtype=np.int64).T
        found = self._slices(first, last)[0]
        return np.unique(found) if len(windows) > 1 else found

    def _slices(self, first: Ints, last: Ints) -> tuple[Ints, Ints]:
        """Pool indices with a key from first[i] to last[i], for every i; and each one's i."""
        starts = np.searchsorted(self.key, first, side="left")
        lengths = np.maximum(np.searchsorted(self.key, last, side="right") - starts, 0)
        windows = np.repeat(np.arange(len(starts)), lengths)
        # The concatenated ranges starts[i] .. starts[i] + lengths[i], in one step.
        begins = np.cumsum(lengths) - lengths
        return np.arange(int(lengths.sum())) + (starts - begins)[windows], windows

    def _shown(self, found: Ints, week: Week) -> Bools:
        return (self.shown_from[found] <= week.day) & (self.shown_until[found] > week.day)

    def offer(self, occasion: int, week: Week) -> Offer | None:
        """Date triggers quote no offer."""
        return None


class LoanAge(_DateTrigger):
    """Funded loans that turned one of the milestone ages in the last window."""

    name = "loan_age"

    def __init__(self, book: BookColumns, config: Config) -> None:
        funded = book.status == STATUSES.index(FUNDED)
        super().__init__(book, funded & (book.funded < NO_DAY), book.funded)
        self.settings = config.triggers.loan_age
        self.year, self.month_day = year_and_month_day(self.key)

    def on(self, week: Week) -> Qualified:
        """Loans whose age in whole years is a milestone reached inside the window."""
        today = week.on
        start = today - timedelta(days=self.settings.window_days - 1)
        found = self._between(
            [
                (day_of(add_years(start, -years)), day_of(add_years(today, -years)))
                for years in self.settings.milestone_years
            ]
        )
        before_birthday = today.month * 100 + today.day < self.month_day[found]
        ages = today.year - self.year[found] - before_birthday
        keep = np.isin(ages, self.settings.milestone_years) & self._shown(found, week)
        return Qualified(self.rows[found[keep]], -ages[keep], ages[keep])

    def occasion(self, loan_id: int, occasion: int, week: Week) -> str:
        """`loan:<id>:<years>y`."""
        return f"loan:{loan_id}:{occasion}y"


class ClosingAnniversary(_DateTrigger):
    """Funded loans whose closing anniversary falls in the lookahead."""

    name = "closing_anniversary"

    def __init__(self, book: BookColumns, config: Config) -> None:
        funded = book.status == STATUSES.index(FUNDED)
        month_day = year_and_month_day(np.where(book.funded < NO_DAY, book.funded, 0))[1]
        # Sorted by (month, day): each day of the window is one slice of the pool.
        super().__init__(book, funded & (book.funded < NO_DAY), month_day)
        self.lookahead = config.triggers.closing_anniversary.lookahead_days
        self.funded = book.funded[self.rows]
        self.year = year_and_month_day(self.funded)[0]

    def on(self, week: Week) -> Qualified:
        """Loans funded in an earlier year on a (month, day) coming up in the lookahead."""
        today = week.on
        days = [today + timedelta(days=offset) for offset in range(self.lookahead + 1)]
        window = [(day.month * 100 + day.day, day) for day in days]
        # Feb 29 closings celebrate on Feb 28 in common years (the live trigger's rule).
        window += [
            (229, day)
            for day in days
            if day.month == 2 and day.day == 28 and (day + timedelta(days=1)).month == 3
        ]
        month_days = np.asarray([month_day for month_day, _ in window], dtype=np.int64)
        rows, which = self._slices(month_days, month_days)
        anniversary = np.asarray([day_of(day) for _, day in window], dtype=np.int64)[which]
        year = np.asarray([day.year for _, day in window], dtype=np.int64)[which]
        latest_funding = day_of(add_years(today, -1) + timedelta(days=self.lookahead))
        keep = (year > self.year[rows]) & (self.funded[rows] <= latest_funding)
        keep &= self._shown(rows, week)
        return Qualified(self.rows[rows[keep]], -(anniversary[keep] - week.day), year[keep])

    def occasion(self, loan_id: int, occasion: int, week: Week) -> str:
        """`loan:<id>:anniversary:<year>`."""
        return f"loan:{loan_id}:anniversary:{occasion}"


class FalloutAnniversary(_DateTrigger):
    """Applications that stalled, at each offset after they fell out."""

    name = "fallout_anniversary"

    def __init__(self, book: BookColumns, config: Config) -> None:
        fell_out = np.isin(book.status, [STATUSES.index(status) for status in FALLOUTS])
        pool = fell_out & (book.fallout < NO_DAY)
        super().__init__(book, pool, book.fallout, after_fallout=True)
        self.settings = config.triggers.fallout_anniversary
        self.denied = book.status[self.rows] == STATUSES.index(DENIED)
        self.offsets = np.sort(np.asarray(self.settings.offsets_days, dtype=np.int64))

    def on(self, week: Week) -> Qualified:
        """Fallouts inside one of the windows, denied ones only after their cooling time."""
        settings = self.settings
        found = self._between(
            [
                (week.day - offset - settings.window_days + 1, min(week.day - offset, week.day))
                for offset in settings.offsets_days
            ]
        )
        ages = week.day - self.key[found]
        cooled = ~self.denied[found] | (ages >= settings.denied_cooling_days)
        keep = np.flatnonzero(cooled & self._shown(found, week))
        found, ages = found[keep], ages[keep]
        # The occasion is the largest offset the application has reached (0 before any).
        reached = np.searchsorted(self.offsets, ages, side="right") - 1
        offset = np.where(reached >= 0, self.offsets[np.maximum(reached, 0)], 0)
        return Qualified(self.rows[found], -ages, offset)

    def occasion(self, loan_id: int, occasion: int, week: Week) -> str:
        """`loan:<id>:fallout:<offset>d`."""
        return f"loan:{loan_id}:fallout:{occasion}d"


class ArmReset(_DateTrigger):
    """Adjustable-rate loans whose first adjustment comes within the configured days."""

    name = "arm_reset"

    def __init__(self, book: BookColumns, config: Config) -> None:
        funded = book.status == STATUSES.index(FUNDED)
        arm = funded & (book.is_arm == 1) & (book.funded < NO_DAY)
        super().__init__(book, arm & (book.arm_adjustment < NO_DAY), book.arm_adjustment)
        self.within = config.triggers.arm_reset.within_days
        self.funded = book.funded[self.rows]

    def on(self, week: Week) -> Qualified:
        """Funded ARMs adjusting between today and `within_days` from now."""
        found = self._between([(week.day, week.day + self.within)])
        keep = (self.funded[found] <= week.day) & self._shown(found, week)
        found = found[keep]
        return Qualified(self.rows[found], -(self.key[found] - week.day), self.key[found])

    def occasion(self, loan_id: int, occasion: int, week: Week) -> str:
        """`loan:<id>:arm:<reset date>`."""
        return f"loan:{loan_id}:arm:{date_of(occasion).isoformat()}"
