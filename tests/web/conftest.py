"""Fixtures for the web process: a live server per test database, and headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web import LiveWeb, live_web

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def web(database_url: str) -> Iterator[LiveWeb]:
    """`winback web` on a fresh database (SQLite and PostgreSQL), over real HTTP."""
    yield from live_web(database_url)


@pytest.fixture(scope="session")
def chromium():  # type: ignore[no-untyped-def]
    """Debian's headless Chromium driven by Playwright (installed by .ci/run)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def screenshots() -> Path:
    """Where page screenshots are kept as artifacts (artifacts/screenshots/, git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
