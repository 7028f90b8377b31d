"""The API's docs pages in a real browser with the internet cut off (issue 35): Swagger UI
and ReDoc must render from this server's own assets."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_fixtures import ApiWorld
from tests.smtp_server import free_port

CHROMIUM = os.environ.get("SIMMIM_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def served_api(api: ApiWorld) -> Iterator[str]:
    """The test world's app on a real uvicorn server in this process, stopped after."""
    import uvicorn

    from app.api.app import create_app
    from app.api.state import ApiState

    app = create_app(
        api.settings, state=ApiState(api.settings, engine=api.engine, encoder=api.encoder)
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.mark.skipif(
    not Path(CHROMIUM).is_file() and os.environ.get("CI") != "true",
    reason="Chromium not installed (apt install chromium); CI installs it",
)
def test_docs_render_offline_in_chromium(served_api: str) -> None:
    from playwright.sync_api import Route, sync_playwright

    asked_elsewhere: list[str] = []

    def offline(route: Route) -> None:
        if route.request.url.startswith(served_api):
            route.continue_()
        else:  # what a machine without internet gets
            asked_elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", offline)
            page.goto(f"{served_api}/docs")
            page.locator(".opblock").first.wait_for(timeout=60_000)  # operations drawn
            assert page.locator(".opblock").count() >= 20
            assert "/v1/search" in page.inner_text("body")
            page.goto(f"{served_api}/redoc")
            page.get_by_text("Search with an uploaded image file").first.wait_for(timeout=60_000)
        finally:
            browser.close()
    # Fonts or logos it could not fetch are fine; the pages themselves needed nothing.
    assert not [u for u in asked_elsewhere if u.endswith(".js") or u.endswith(".css")]
