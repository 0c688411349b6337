"""Market rate commands: `winback rates set|fetch|load|show` (recording never evaluates)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import JsonOption, NowOption, app, fail, print_json, runtime
from bot.runtime import Runtime
from core.db import transaction
from core.rates.feeds import feed_from_settings
from core.rates.parsers import HIGHEST_RATE, LOWEST_RATE, PRODUCTS, FeedError, Observation
from core.rates.service import (
    BUNDLED_HISTORY,
    Offer,
    RateError,
    RecordResult,
    current_offer,
    fetch_and_record,
    format_rate,
    load_history,
    record_manual_rate,
)

rates_app = typer.Typer(
    help="Market rates: record them and see today's offer rate.", no_args_is_help=True
)
app.add_typer(rates_app, name="rates")

ProductOption = Annotated[str, typer.Option("--product", help="30y or 15y.")]


def parse_rate(text: str) -> Decimal:
    """A rate typed as `6.125` or `6.125%`, checked to be a plausible mortgage rate."""
    cleaned = text.strip().removesuffix("%").strip()
    try:
        rate = Decimal(cleaned)
    except InvalidOperation:
        fail(f"RATE {text!r} is not a number (write it like 6.125 or 6.125%)")
    if not (rate.is_finite() and LOWEST_RATE < rate < HIGHEST_RATE):
        fail(f"RATE {text} is outside {LOWEST_RATE}-{HIGHEST_RATE}% (write 6.125 for 6.125%)")
    return rate


def _product(product: str) -> str:
    """The product name, or exit naming the choices."""
    product = product.strip().lower()
    if product not in PRODUCTS:
        fail(f"--product {product!r} is not one of {', '.join(PRODUCTS)}")
    return product


def _date(value: str | None, rt: Runtime) -> date:
    """The --date value, today (by the clock) when absent."""
    if not value:
        return rt.clock.now().date()
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        fail(f"--date {value!r} is not a date (YYYY-MM-DD)")


def _latest_json(observation: Observation | None) -> dict[str, Any] | None:
    """An observation for the JSON report."""
    if observation is None:
        return None
    return {
        "date": observation.on.isoformat(),
        "rate": float(observation.rate),
        "source": observation.source,
    }


def _report(result: RecordResult, as_json: bool) -> None:
    """Print what recording did: one JSON object, or a line for people."""
    if as_json:
        print_json(
            {
                "inserted": result.inserted,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "latest": {product: _latest_json(item) for product, item in result.latest.items()},
            }
        )
        return
    typer.echo(
        f"recorded {result.inserted} new, {result.updated} updated, "
        f"{result.unchanged} unchanged market rates"
    )
    for product, item in result.latest.items():
        shown = (
            f"{format_rate(item.rate)}% ({item.on.isoformat()}, {item.source})"
            if item
            else "none recorded"
        )
        typer.echo(f"latest {product}: {shown}")


@rates_app.command("set")
def rates_set(
    rate: Annotated[str, typer.Argument(help="The rate in percent, e.g. 6.125 or 6.125%.")],
    product: ProductOption = "30y",
    on: Annotated[
        str | None, typer.Option("--date", help="The date it applies to (default: today).")
    ] = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a market rate by hand (source 'manual'); it does not evaluate anything."""
    value = parse_rate(rate)
    product = _product(product)
    rt = runtime(now)
    day = _date(on, rt)
    try:
        with transaction(rt.sessions) as session:
            result = record_manual_rate(
                session=session,
                rate=value,
                product=product,
                on=day,
                now=rt.clock.now(),
                actor="cli",
            )
    except RateError as exc:
        fail(str(exc))
    _report(result, as_json)


@rates_app.command("fetch")
def rates_fetch(now: NowOption = None, as_json: JsonOption = False) -> None:
    """Fetch new rates from RATE_FEED_URL, FRED's API (FRED_API_KEY) or FRED's CSV."""
    rt = runtime(now)
    try:
        feed = feed_from_settings(
            rate_feed_url=rt.settings.RATE_FEED_URL, fred_api_key=rt.settings.FRED_API_KEY
        )
        with transaction(rt.sessions) as session:
            result = fetch_and_record(session=session, feed=feed, now=rt.clock.now())
    except FeedError as exc:
        fail(f"rates not fetched: {exc}")
    _report(result, as_json)


@rates_app.command("load")
def rates_load(
    path: Annotated[str, typer.Argument(help="A history CSV, or `bundled` for Freddie Mac PMMS.")],
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record every rate of a history CSV (FRED, Freddie Mac PMMS or date,rate_30y,rate_15y)."""
    source = BUNDLED_HISTORY if path.strip().lower() == "bundled" else Path(path)
    rt = runtime(now)
    try:
        with transaction(rt.sessions) as session:
            result = load_history(session=session, path=source, now=rt.clock.now())
    except FeedError as exc:
        fail(f"rates not loaded: {exc}")
    _report(result, as_json)


def _offer_json(offer: Offer | None) -> dict[str, Any] | None:
    """An offer for the JSON report."""
    if offer is None:
        return None
    return {
        "index": float(offer.index_rate),
        "offset": float(offer.offset),
        "offer": float(offer.rate),
        "as_of": offer.as_of.isoformat(),
        "source": offer.source,
        "describe": offer.describe(),
    }


@rates_app.command("show")
def rates_show(now: NowOption = None, as_json: JsonOption = False) -> None:
    """Today's market index and offer rate for each product."""
    rt = runtime(now)
    config = rt.config  # a bad WINBACK_CONFIG exits with one line (bot.cli.common)
    today = rt.clock.now().date()
    with transaction(rt.sessions) as session:
        offers = {
            product: current_offer(session=session, product=product, on=today, config=config.rates)
            for product in PRODUCTS
        }
    if as_json:
        print_json({"rates": {product: _offer_json(offer) for product, offer in offers.items()}})
        return
    for product, offer in offers.items():
        if offer is None:
            typer.echo(f"{product}: no market rate recorded (run `winback rates fetch`)")
        else:
            typer.echo(f"{product}: {offer.describe()}")
