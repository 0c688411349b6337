"""Market rates: published 30y/15y averages parsed from FRED, Freddie Mac or a rate sheet."""

from core.rates.feeds import (
    FredApiFeed,
    FredGraphFeed,
    RateFeed,
    UrlRateSheetFeed,
    feed_from_settings,
    mask_secrets,
)
from core.rates.parsers import (
    EmptySeriesError,
    FeedError,
    Observation,
    RateError,
    load_history_file,
    parse_any_csv,
    parse_fred_json,
    parse_freddie_pmms_csv,
    parse_fredgraph_csv,
    parse_history_csv,
    parse_rate,
    parse_rate_sheet,
)

__all__ = [
    "EmptySeriesError",
    "FeedError",
    "FredApiFeed",
    "FredGraphFeed",
    "Observation",
    "RateError",
    "RateFeed",
    "UrlRateSheetFeed",
    "feed_from_settings",
    "load_history_file",
    "mask_secrets",
    "parse_any_csv",
    "parse_fred_json",
    "parse_freddie_pmms_csv",
    "parse_fredgraph_csv",
    "parse_history_csv",
    "parse_rate",
    "parse_rate_sheet",
]
