"""The funnel and the holdout lift: what outreach did, and whether it caused it (SPEC §2.8, §4).

Split in modules: rows (the period parser, FunnelRow, Funnel), queries (the one counting
statement), report (funnel() and its rules, in its docstring), lift (messaged vs held out),
variants (the A/B readout: each template experiment's arms, p-values, sample-ratio check).
"""

from core.stats.lift import Lift, holdout_lift, lift_of
from core.stats.report import funnel
from core.stats.rows import (
    ACCEPTED,
    BY,
    COLUMNS,
    EXTRA_COUNTS,
    PERIODS,
    UNASSIGNED,
    Funnel,
    FunnelRow,
    parse_since,
)
from core.stats.variants import Arm, Readout, variant_readout

__all__ = [
    "ACCEPTED",
    "BY",
    "COLUMNS",
    "EXTRA_COUNTS",
    "PERIODS",
    "UNASSIGNED",
    "Arm",
    "Funnel",
    "FunnelRow",
    "Lift",
    "Readout",
    "funnel",
    "holdout_lift",
    "lift_of",
    "parse_since",
    "variant_readout",
]
