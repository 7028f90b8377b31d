"""The dashboard in a real browser: `simmim dashboard` on a seeded data directory, driven by
Debian's Chromium through Playwright (no browser download). Visits every page, searches,
and saves a screenshot of each page."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.dashboard_fixtures"]
CHROMIUM = os.environ.get("SIMMIM_TEST_CHROMIUM", "/usr/bin/chromium")
# page → (URL path, text that shows the page rendered fully)
PAGES = {
    "search": ("", "Find"),
    "trends": ("trends", "Top items of a bucket"),
    "alerts": ("alerts", "Volume spike in ticker ACME"),
    "sources": ("sources", "Add a source"),
    "system": ("system", "the last run of each step"),
}
# SIMMIM_SCREENSHOT_DIR=docs/ keeps the screenshots (the README's comes from here).
KEEP = os.environ.get("SIMMIM_SCREENSHOT_DIR")


def _browser_available() -> bool:
    return Path(CHROMIUM).is_file()


@pytest.fixture
def dashboard_url(seeded_env: Path) -> Iterator[str]:
    from tests.streamlit_client import dashboard_process

    with dashboard_process() as url:  # stopped, with its Streamlit child, even on failure
        yield url


def _settle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait for Streamlit to finish running the script."""
    page.wait_for_selector('[data-testid="stMain"]', timeout=60_000)
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )
    page.wait_for_timeout(800)


def _no_errors(page, name: str) -> None:  # type: ignore[no-untyped-def]
    assert page.locator('[data-testid="stException"]').count() == 0, f"{name}: exception shown"
    body = page.inner_text("body")
    assert "Traceback" not in body and "Error:" not in body, f"{name}: error text shown"


@pytest.mark.skipif(
    not _browser_available() and os.environ.get("CI") != "true",
    reason="Chromium not installed (apt install chromium); CI installs it",
)
def test_every_page_in_chromium(dashboard_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for name, (path, marker) in PAGES.items():
            page.goto(f"{dashboard_url}/{path}")
            page.get_by_text(marker).first.wait_for(timeout=90_000)
            _settle(page)
            assert page.get_by_role("heading", name=name.capitalize()).count() >= 1, name
            _no_errors(page, name)
            if name == "search":
                page.get_by_label("Text", exact=True).fill(
                    "Fed raises interest rates by 25 basis points"
                )
                page.get_by_role("button", name="Search").click()
                page.get_by_text("result(s)").wait_for(timeout=60_000)
                _settle(page)
                _no_errors(page, "search results")
                assert page.get_by_text("Fed raises interest rates by 25 basis points").count() >= 1
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        browser.close()
    assert sorted(p.name for p in shots.iterdir()) == sorted(f"{n}.png" for n in PAGES)
    if KEEP:
        target = Path(KEEP)
        target.mkdir(parents=True, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, target / f"dashboard-{shot.name}")


@pytest.fixture
def guarded_dashboard_url(seeded_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from tests.streamlit_client import dashboard_process

    monkeypatch.setenv("SIMMIM_DASHBOARD__PASSWORD", "browser-s3cret")
    with dashboard_process() as url:
        yield url


@pytest.mark.skipif(
    not _browser_available() and os.environ.get("CI") != "true",
    reason="Chromium not installed (apt install chromium); CI installs it",
)
def test_every_page_asks_for_the_password_in_chromium(guarded_dashboard_url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        for name, (path, marker) in PAGES.items():
            page.goto(f"{guarded_dashboard_url}/{path}")
            page.get_by_label("Password", exact=True).wait_for(timeout=90_000)
            _settle(page)
            body = page.inner_text("body")
            assert marker not in body, f"{name}: page content shown without logging in"
            assert "newswire" not in body and "ACME" not in body, name
        page.get_by_label("Password", exact=True).fill("browser-s3cret")
        page.get_by_label("Password", exact=True).press("Enter")
        # The last page asked for (system) opens once logged in: deep links survive the login.
        page.get_by_text(PAGES["system"][1]).first.wait_for(timeout=90_000)
        page.goto(f"{guarded_dashboard_url}/sources")  # a new page load is a new session
        page.get_by_label("Password", exact=True).wait_for(timeout=90_000)
        browser.close()
