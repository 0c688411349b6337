"""Where today's market rates come from: FRED's JSON API, FRED's keyless CSV, a rate sheet URL.

Every feed retries transient trouble (connect errors, timeouts, 429, 5xx) with exponential
backoff and otherwise fails with one `FeedError` line naming the URL, API key masked.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, Protocol

import httpx

from core.rates.parsers import (
    SERIES_PRODUCTS,
    EmptySeriesError,
    FeedError,
    Observation,
    parse_fredgraph_csv,
    parse_rate_sheet,
    read_fred_page,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF = 0.5  # seconds before the 2nd attempt; doubled before each later one
FRED_API_URL = "https://api.stlouisfed.org"
FREDGRAPH_URL = "https://fred.stlouisfed.org"
# FRED allows 100000 rows a page; a higher page count means a runaway `count`, not real data.
_MAX_PAGES = 100
_LONGEST_RETRY_AFTER = 60.0
_RETRYABLE = (
    httpx.TimeoutException,
    httpx.ConnectError,
    httpx.ReadError,
    httpx.RemoteProtocolError,
)
_SECRET_PARAM = re.compile(r"\b(api_key|apikey|access_token|token)=[^&\s\"'#]+", re.IGNORECASE)

Sleep = Callable[[float], None]


class RateFeed(Protocol):
    """Anything that can tell the published 30y/15y market rates on or after a date."""

    def fetch(self, *, since: date | None = None) -> list[Observation]:
        """Observations on or after `since` (all available when None); FeedError on failure."""
        ...


def mask_secrets(text: str) -> str:
    """The text with API keys and tokens in URLs replaced by ***."""
    return _SECRET_PARAM.sub(r"\1=***", text)


class _RedactSecrets(logging.Filter):
    """Masks API keys in httpx's own request log ("HTTP Request: GET ...?api_key=...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with keys masked; never drops a record."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report
            return True
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def _guard_http_logs() -> None:
    """Install the key-masking filter on httpx's logger, once."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(item, _RedactSecrets) for item in logger.filters):
        logger.addFilter(_RedactSecrets())


def _error_detail(response: httpx.Response) -> str:
    """FRED's `error_message`, or the start of a plain-text body, for a failed request."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error_message"):
        return f": {body['error_message']}"
    text = response.text[:120].strip()
    if text and not text.startswith("<"):
        return f": {text}"
    return ""


class _Http:
    """GET with timeouts, retries on transient failures, and masked URLs in logs and errors."""

    def __init__(
        self,
        client: httpx.Client | None,
        timeout: httpx.Timeout | float,
        attempts: int,
        backoff: float,
        sleep: Sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.client = client
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep
        _guard_http_logs()

    @contextmanager
    def _session(self) -> Iterator[httpx.Client]:
        """The caller's client, or a short-lived one of our own."""
        if self.client is not None:
            yield self.client
            return
        with httpx.Client(follow_redirects=True, headers={"User-Agent": "winback"}) as client:
            yield client

    def get(self, url: str, params: dict[str, str] | None = None) -> httpx.Response:
        """The successful response, or FeedError once retries are used up or on a 4xx."""
        try:
            shown = mask_secrets(str(httpx.URL(url, params=params)))
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise FeedError("not a valid URL", where=mask_secrets(url)) from exc
        problem = "no attempt made"
        with self._session() as client:
            for attempt in range(1, self.attempts + 1):
                log.info("fetching rates from %s", shown)
                outcome, wait = self._try_once(client, url, params, shown)
                if isinstance(outcome, httpx.Response):
                    return outcome
                problem = outcome
                if attempt < self.attempts:
                    wait = max(wait, self.backoff * 2 ** (attempt - 1))
                    log.warning("%s: %s; retrying in %.1fs", shown, problem, wait)
                    self.sleep(wait)
        raise FeedError(f"{problem} (gave up after {self.attempts} attempts)", where=shown)

    def _try_once(
        self, client: httpx.Client, url: str, params: dict[str, str] | None, shown: str
    ) -> tuple[httpx.Response | str, float]:
        """The response if usable, else a retryable problem and the server's requested wait."""
        try:
            response = client.get(url, params=params, timeout=self.timeout)
        except _RETRYABLE as exc:
            return mask_secrets(f"{type(exc).__name__} {exc}".strip()), 0.0
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FeedError(mask_secrets(f"{type(exc).__name__} {exc}"), where=shown) from exc
        status = response.status_code
        if response.is_success:
            return response, 0.0
        if status == 429 or status >= 500:
            return f"HTTP {status}", _retry_after(response)
        detail = mask_secrets(_error_detail(response))
        raise FeedError(f"HTTP {status} {response.reason_phrase}{detail}", where=shown)


def _retry_after(response: httpx.Response) -> float:
    """Seconds the server asked us to wait (Retry-After), capped; 0 when absent."""
    try:
        return min(float(response.headers.get("retry-after", "0")), _LONGEST_RETRY_AFTER)
    except ValueError:
        return 0.0


def _since(observations: list[Observation], since: date | None) -> list[Observation]:
    """Observations on or after `since`, oldest first, 30y before 15y on the same day."""
    kept = [item for item in observations if since is None or item.on >= since]
    return sorted(kept, key=lambda item: (item.on, item.product != "30y"))


class FredApiFeed:
    """MORTGAGE30US and MORTGAGE15US from FRED's JSON API (needs FRED_API_KEY)."""

    def __init__(
        self,
        api_key: str,
        base_url: str = FRED_API_URL,
        client: httpx.Client | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        sleep: Sleep = time.sleep,
        page_size: int = 100_000,
    ) -> None:
        self.api_key = api_key
        self.url = base_url.rstrip("/") + "/fred/series/observations"
        self.page_size = page_size
        self._http = _Http(client, timeout, attempts, backoff, sleep)

    def __repr__(self) -> str:
        return f"FredApiFeed(url={self.url!r}, api_key='***')"

    def fetch(self, *, since: date | None = None) -> list[Observation]:
        """Both series' weekly rates on or after `since` (all history when None)."""
        found: list[Observation] = []
        for series, product in SERIES_PRODUCTS.items():
            found += self._series(series, product, since)
        return _since(found, since)

    def _series(self, series: str, product: str, since: date | None) -> list[Observation]:
        """Every page of one series."""
        found: list[Observation] = []
        offset = 0
        for _ in range(_MAX_PAGES):
            params = {
                "series_id": series,
                "api_key": self.api_key,
                "file_type": "json",
                "sort_order": "asc",
                "limit": str(self.page_size),
                "offset": str(offset),
            }
            if since is not None:
                params["observation_start"] = since.isoformat()
            response = self._http.get(self.url, params)
            shown = mask_secrets(str(response.request.url))
            try:
                page = read_fred_page(response.content, product=product, source=f"fred:{series}")
            except FeedError as err:
                raise FeedError(mask_secrets(err.reason), where=shown) from err
            found += page.observations
            offset += page.returned
            if page.returned == 0 or offset >= page.count:
                break
        else:
            raise FeedError(f"more than {_MAX_PAGES} pages for {series}", where=self.url)
        if not found and since is None:
            raise EmptySeriesError(f"no rates in {series}", where=self.url)
        return found


class FredGraphFeed:
    """MORTGAGE30US and MORTGAGE15US from FRED's keyless CSV download."""

    def __init__(
        self,
        base_url: str = FREDGRAPH_URL,
        client: httpx.Client | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.url = base_url.rstrip("/") + "/graph/fredgraph.csv"
        self._http = _Http(client, timeout, attempts, backoff, sleep)

    def fetch(self, *, since: date | None = None) -> list[Observation]:
        """Both series' weekly rates on or after `since` (all history when None)."""
        found: list[Observation] = []
        for series, product in SERIES_PRODUCTS.items():
            params = {"id": series}
            if since is not None:
                params["cosd"] = since.isoformat()
            response = self._http.get(self.url, params)
            shown = mask_secrets(str(response.request.url))
            try:
                found += parse_fredgraph_csv(
                    response.content, product=product, series_id=series, source=f"fred:{series}"
                )
            except EmptySeriesError as err:
                if since is None:
                    raise EmptySeriesError(err.reason, where=shown) from err
            except FeedError as err:
                raise FeedError(err.reason, where=shown) from err
        return _since(found, since)


class UrlRateSheetFeed:
    """A broker's own daily rate sheet at RATE_FEED_URL (JSON or CSV)."""

    def __init__(
        self,
        url: str,
        client: httpx.Client | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.url = url
        # A FRED-style JSON envelope does not name its series; the URL usually does.
        self.product = "15y" if "MORTGAGE15US" in url.upper() else "30y"
        self._http = _Http(client, timeout, attempts, backoff, sleep)

    def __repr__(self) -> str:
        return f"UrlRateSheetFeed(url={mask_secrets(self.url)!r})"

    def fetch(self, *, since: date | None = None) -> list[Observation]:
        """The sheet's 30y/15y rates on or after `since` (everything on it when None)."""
        response = self._http.get(self.url)
        shown = mask_secrets(self.url)
        try:
            found = parse_rate_sheet(
                response.content,
                content_type=response.headers.get("content-type"),
                source=shown,
                product=self.product,
            )
        except EmptySeriesError:
            if since is None:
                raise
            return []
        return _since(found, since)


def feed_from_settings(*, rate_feed_url: str | None, fred_api_key: str | None) -> RateFeed:
    """The feed the settings ask for: RATE_FEED_URL, else FRED's API with a key, else its CSV."""
    rate_feed_url = (rate_feed_url or "").strip()
    fred_api_key = (fred_api_key or "").strip()
    if rate_feed_url:
        if not rate_feed_url.lower().startswith(("http://", "https://")):
            raise FeedError("must be an http:// or https:// URL", where="RATE_FEED_URL")
        return UrlRateSheetFeed(rate_feed_url)
    if fred_api_key:
        return FredApiFeed(fred_api_key)
    return FredGraphFeed()
