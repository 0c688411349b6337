"""Market rate commands: `winback rates set|fetch|load|confirm|show` (recording never evaluates)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import JsonOption, NowOption, app, fail, print_json, runtime
from bot.runtime import Runtime
from core.db import transaction
from core.rates.feeds import feed_from_settings
from core.rates.parsers import PRODUCTS, FeedError, Observation, parse_rate
from core.rates.service import (
    BUNDLED_HISTORY,
    HeldRate,
    Offer,
    RateError,
    RecordResult,
    confirm_held,
    current_offer,
    fetch_and_record,
    format_rate,
    held_rates,
    held_warning,
    latest_observations,
    load_history,
    record_manual_rate,
)

rates_app = typer.Typer(
    help="Market rates: record them and see today's offer rate.", no_args_is_help=True
)
app.add_typer(rates_app, name="rates")

ProductOption = Annotated[str, typer.Option("--product", help="30y or 15y.")]


def _rate(text: str) -> Decimal:
    """The RATE argument read by the one rate parser, or exit naming the plausible band."""
    try:
        return parse_rate(text)
    except RateError as exc:
        fail(f"RATE {exc} (6.5, 6.5% and 0.065 all mean 6.5 %)")


def _product(product: str) -> str:
    """The product name, or exit naming the choices."""
    product = product.strip().lower()
    if product not in PRODUCTS:
        fail(f"--product {product!r} is not one of {', '.join(PRODUCTS)}")
    return product


def _day(value: str) -> date:
    """A --date value, or exit naming the expected form."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        fail(f"--date {value!r} is not a date (YYYY-MM-DD)")


def _date(value: str | None, rt: Runtime) -> date:
    """The --date value, today (by the clock) when absent."""
    return _day(value) if value else rt.clock.now().date()


def _latest_json(observation: Observation | None) -> dict[str, Any] | None:
    """An observation for the JSON report."""
    if observation is None:
        return None
    return {
        "date": observation.on.isoformat(),
        "rate": float(observation.rate),
        "source": observation.source,
    }


def _held_json(item: HeldRate) -> dict[str, Any]:
    """A held observation for the JSON report."""
    return {
        "product": item.product,
        "date": item.on.isoformat(),
        "rate": float(item.rate),
        "source": item.source,
        "why": item.reason,
    }


def _echo_latest(latest: dict[str, Observation | None]) -> None:
    """One line per product: the index in effect."""
    for product, item in latest.items():
        shown = (
            f"{format_rate(item.rate)}% ({item.on.isoformat()}, {item.source})"
            if item
            else "none recorded"
        )
        typer.echo(f"latest {product}: {shown}")


def _report(result: RecordResult, as_json: bool) -> None:
    """Print what recording did: one JSON object, or a line for people."""
    if as_json:
        print_json(
            {
                "inserted": result.inserted,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "held": [_held_json(item) for item in result.held],
                "future": result.future,
                "latest": {product: _latest_json(item) for product, item in result.latest.items()},
            }
        )
        return
    typer.echo(
        f"recorded {result.inserted} new, {result.updated} updated, "
        f"{result.unchanged} unchanged market rates"
    )
    if result.future:
        typer.echo(f"refused {result.future} market rate(s) dated after today")
    for item in result.held:
        typer.echo(held_warning(item))
    _echo_latest(result.latest)


# A negative-looking RATE such as -5 is an argument to refuse by range, not an unknown option.
@rates_app.command("set", context_settings={"ignore_unknown_options": True})
def rates_set(
    rate: Annotated[str, typer.Argument(help="The rate: 6.125, 6.125% or 0.06125 (1-20 %).")],
    product: ProductOption = "30y",
    on: Annotated[
        str | None, typer.Option("--date", help="The date it applies to (default: today).")
    ] = None,
    confirm: Annotated[
        bool,
        typer.Option("--confirm", help="Record it even if it moved more than max_move_points."),
    ] = False,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a market rate by hand (source 'manual'); it does not evaluate anything."""
    value = _rate(rate)
    product = _product(product)
    rt = runtime(now)
    day = _date(on, rt)
    max_move = rt.config.rates.max_move_points  # a bad WINBACK_CONFIG exits with one line
    try:
        with transaction(rt.sessions) as session:
            result = record_manual_rate(
                session=session,
                rate=value,
                product=product,
                on=day,
                now=rt.clock.now(),
                actor="cli",
                max_move=max_move,
                confirm=confirm,
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
        max_move = rt.config.rates.max_move_points
        with transaction(rt.sessions) as session:
            result = fetch_and_record(
                session=session, feed=feed, now=rt.clock.now(), max_move=max_move
            )
    except FeedError as exc:
        fail(f"rates not fetched: {exc}")
    _report(result, as_json)


@rates_app.command("load")
def rates_load(
    path: Annotated[str, typer.Argument(help="A history CSV, or `bundled` for Freddie Mac PMMS.")],
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a history CSV as it is (FRED, Freddie Mac PMMS or date,rate_30y,rate_15y)."""
    source = BUNDLED_HISTORY if path.strip().lower() == "bundled" else Path(path)
    rt = runtime(now)
    try:
        with transaction(rt.sessions) as session:
            result = load_history(session=session, path=source, now=rt.clock.now())
    except FeedError as exc:
        fail(f"rates not loaded: {exc}")
    _report(result, as_json)


@rates_app.command("confirm")
def rates_confirm(
    product: Annotated[
        str | None, typer.Option("--product", help="Only this product (30y or 15y).")
    ] = None,
    on: Annotated[str | None, typer.Option("--date", help="Only the one of this date.")] = None,
    by: Annotated[str, typer.Option("--by", help="Who checked it (for the audit trail).")] = "cli",
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put held feed rates into use after checking them (every held one without filters)."""
    wanted = _product(product) if product is not None else None
    day = _day(on) if on is not None else None
    rt = runtime(now)
    with transaction(rt.sessions) as session:
        confirmed = confirm_held(
            session=session, now=rt.clock.now(), actor=by, product=wanted, on=day
        )
        latest = latest_observations(session=session, on=rt.clock.now().date())
    if as_json:
        print_json(
            {
                "confirmed": [_held_json(item) for item in confirmed],
                "latest": {name: _latest_json(item) for name, item in latest.items()},
            }
        )
        return
    if not confirmed:
        typer.echo("no held market rate to confirm")
    for item in confirmed:
        typer.echo(
            f"confirmed {item.product} rate {format_rate(item.rate)} % of "
            f"{item.on.isoformat()} from {item.source} ({item.reason})"
        )
    _echo_latest(latest)


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
        held = held_rates(session=session)
    if as_json:
        print_json(
            {
                "rates": {product: _offer_json(offer) for product, offer in offers.items()},
                "held": [_held_json(item) for item in held],
            }
        )
        return
    for product, offer in offers.items():
        if offer is None:
            typer.echo(f"{product}: no market rate recorded (run `winback rates fetch`)")
        else:
            typer.echo(f"{product}: {offer.describe()}")
    for item in held:
        typer.echo(held_warning(item))
