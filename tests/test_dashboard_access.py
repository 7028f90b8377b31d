"""The dashboard's gate against a real `simmim dashboard` process, driven over its websocket as
an attacker on loopback would: every page name and every write control, with and without
the password, the proxy header, or a single sign-on login."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.http_server import LocalServer, Reply
from tests.streamlit_client import (
    StreamlitSession,
    click,
    dashboard_process,
    text_value,
)

pytest_plugins = ["tests.dashboard_fixtures"]
PASSWORD = "s3cret-Pa55"
PAGE_NAMES = ["", "search", "trends", "alerts", "sources", "system", "login", "no-such-page"]
# What each page shows when let in; none of it may reach a session that is not.
PAGE_MARKERS = {
    "search": "Find",
    "trends": "Top items of a bucket",
    "alerts": "Volume spike in ticker ACME",
    "sources": "news.test/feed",
    "system": "the last run of each step",
}


def private_markers(data: Path) -> list[str]:
    return ["newswire", "news.test", "ACME", "the last run of each step", str(data)]


def assert_nothing_private(render_bytes: bytes, data: Path, where: str) -> None:
    for marker in private_markers(data):
        assert marker.encode() not in render_bytes, f"{where}: {marker!r} shown without access"


def _state(data: Path) -> tuple[list[tuple[str, bool]], list[object], list[object], int]:
    """What a write control could change: sources, acknowledgements, rules, saved queries."""
    from monitor.models import Alert, Rule, SavedQuery
    from simmim.db import make_engine, session_factory, session_scope
    from simmim.models import Source
    from simmim.settings import load_settings

    engine = make_engine(load_settings().database_url)  # SQLite in `data`, or PostgreSQL
    try:
        with session_scope(session_factory(engine)) as session:
            sources = [
                (s.location, s.enabled) for s in session.scalars(select(Source).order_by(Source.id))
            ]
            acks = [a.acknowledged_at for a in session.scalars(select(Alert).order_by(Alert.id))]
            rules = [
                (r.name, r.enabled, r.z, r.window, r.min_volume)
                for r in session.scalars(select(Rule).order_by(Rule.id))
            ]
            queries = len(list(session.scalars(select(SavedQuery))))
    finally:
        engine.dispose()
    return sources, acks, rules, queries


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_seeded_env(request: pytest.FixtureRequest) -> Path:
    """The seeded corpus on SQLite, and on PostgreSQL."""
    name = "seeded_env" if request.param == "sqlite" else "seeded_env_pg"
    return Path(request.getfixturevalue(name))


@pytest.fixture
def password_dashboard(seeded_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SIMMIM_DASHBOARD__PASSWORD", PASSWORD)
    with dashboard_process() as url:
        yield url


@pytest.fixture
def any_password_dashboard(
    any_seeded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    monkeypatch.setenv("SIMMIM_DASHBOARD__PASSWORD", PASSWORD)
    with dashboard_process() as url:
        yield url, any_seeded_env


def _login(url: str) -> StreamlitSession:
    session = StreamlitSession(url)
    form = session.request("")
    shown = session.request("", [text_value(form.widget("text_input", "Password"), PASSWORD)])
    assert shown.shows("Find"), "the right password opens the search page"
    return session


def test_no_page_without_the_password(any_password_dashboard: tuple[str, Path]) -> None:
    password_dashboard, seeded_env = any_password_dashboard
    for page in PAGE_NAMES:
        session = StreamlitSession(password_dashboard)
        try:
            render = session.request(page)
        finally:
            session.close()
        render.widget("text_input", "Password")  # the login form, and nothing else
        assert_nothing_private(render.raw, seeded_env, f"page {page!r}")


def test_wrong_password_shows_nothing(password_dashboard: str, seeded_env: Path) -> None:
    session = StreamlitSession(password_dashboard)
    try:
        form = session.request("sources")
        field = form.widget("text_input", "Password")
        render = session.request("sources", [text_value(field, "not-it")])
        assert render.shows("Wrong password.")
        assert_nothing_private(render.raw, seeded_env, "after a wrong password")
    finally:
        session.close()


def test_the_password_opens_every_page(password_dashboard: str) -> None:
    session = _login(password_dashboard)
    try:
        for page, marker in PAGE_MARKERS.items():
            render = session.request(page)
            assert render.shows(marker) and not render.page_not_found, page  # deep links
        assert session.request("no-such-page").page_not_found
    finally:
        session.close()


def test_clicks_without_the_password_change_nothing(
    any_password_dashboard: tuple[str, Path],
) -> None:
    password_dashboard, seeded_env = any_password_dashboard
    before = _state(seeded_env)
    assert before[0] and before[0][0][1] is True and before[1] and before[1][0] is None
    assert before[2], "the seeded database has rules to change"
    # The widget ids come from a session that is let in (they are the same in every session).
    insider = _login(password_dashboard)
    try:
        sources = insider.request("sources")
        alerts = insider.request("alerts")
    finally:
        insider.close()
    disable = sources.widget("button", "Disable")
    location = sources.widget("text_input", "Location")
    add = sources.widget("button", "Add source")
    ack = alerts.widget("button", "Acknowledge")

    every_button = [
        (page, widget)
        for page, render in (("sources", sources), ("alerts", alerts))
        for widget in render.widgets()
        if widget.kind == "button"
    ]
    assert len(every_button) >= 5, every_button  # enable, disable, add, ack, rule forms

    intruder = StreamlitSession(password_dashboard)
    try:
        for page, states in (
            ("sources", [click(disable)]),
            ("alerts", [click(ack)]),
            ("sources", [text_value(location, "http://evil.test/feed.xml"), click(add)]),
            ("", [click(disable), click(ack)]),
            *((page, [click(widget)]) for page, widget in every_button),
        ):
            render = intruder.request(page, states)
            assert_nothing_private(render.raw, seeded_env, f"click on {page!r}")
    finally:
        intruder.close()
    assert _state(seeded_env) == before, "an unauthenticated click changed the database"
    # The same click from a session that is let in does change it: the ids were right.
    insider = _login(password_dashboard)
    try:
        insider.request("sources")
        insider.request("sources", [click(disable)])
    finally:
        insider.close()
    assert _state(seeded_env)[0][0][1] is False, "the control works once logged in"


@pytest.fixture
def proxy_dashboard(seeded_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SIMMIM_DASHBOARD__PROXY_USER_HEADER", "X-Forwarded-User")
    monkeypatch.setenv("SIMMIM_DASHBOARD__PROXY_ALLOWED_USERS", '["alice"]')
    with dashboard_process() as url:
        yield url


def test_proxy_header_decides(proxy_dashboard: str, seeded_env: Path) -> None:
    for headers in ({}, {"X-Forwarded-User": "mallory"}, {"X-Forwarded-User": " "}):
        for page in ("", "sources", "alerts"):
            session = StreamlitSession(proxy_dashboard, headers)
            try:
                render = session.request(page)
            finally:
                session.close()
            assert render.shows("Access denied"), (headers, page)
            assert_nothing_private(render.raw, seeded_env, f"{headers} {page!r}")
    session = StreamlitSession(proxy_dashboard, {"X-Forwarded-User": "alice"})
    try:
        assert session.request("sources").shows("news.test/feed")
    finally:
        session.close()


def test_single_sign_on_sends_users_to_the_provider(
    seeded_env: Path, monkeypatch: pytest.MonkeyPatch, http_server: LocalServer
) -> None:
    metadata = {
        "issuer": http_server.url(""),
        "authorization_endpoint": http_server.url("/authorize"),
        "token_endpoint": http_server.url("/token"),
        "jwks_uri": http_server.url("/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    http_server.routes["/.well-known/openid-configuration"] = Reply(
        body=json.dumps(metadata).encode(), headers={"Content-Type": "application/json"}
    )
    settings = {
        "SERVER_METADATA_URL": http_server.url("/.well-known/openid-configuration"),
        "CLIENT_ID": "simmim-dashboard",
        "CLIENT_SECRET": "client-secret-value",
        "REDIRECT_URI": "http://127.0.0.1:1/oauth2callback",
        "COOKIE_SECRET": "cookie-secret-value-0123456789abcdef",
    }
    for name, value in settings.items():
        monkeypatch.setenv(f"SIMMIM_DASHBOARD__OIDC__{name}", value)
    with dashboard_process() as url:
        secrets = seeded_env / "dashboard-secrets.toml"
        assert secrets.stat().st_mode & 0o077 == 0, "the secrets file is private to its user"
        session = StreamlitSession(url)
        try:
            for page in ("", "sources", "system"):
                render = session.request(page)
                assert_nothing_private(render.raw, seeded_env, f"SSO page {page!r}")
            login = render.widget("button", "Log in with single sign-on")
            clicked = session.request("", [click(login)])
        finally:
            session.close()
        redirects = [m.auth_redirect.url for m in clicked.messages if m.HasField("auth_redirect")]
        assert redirects, "the button asks the browser to go to the login route"
        # The server's own login route hands the browser to the provider, with our client.
        reply = httpx.get(url + redirects[0], follow_redirects=False, timeout=30)
        assert reply.status_code in (302, 303, 307), reply.text[:500]
        target = reply.headers["location"]
        assert target.startswith(http_server.url("/authorize")), target
        assert "client_id=simmim-dashboard" in target


def test_sigterm_to_the_dashboard_command_stops_streamlit_too(seeded_env: Path) -> None:
    import os
    import signal
    import time

    from tests.streamlit_client import start_dashboard, stop_process_group

    process, _ = start_dashboard()  # its own group: what is left of it can be looked for
    try:
        process.send_signal(signal.SIGTERM)  # to the CLI only, as systemd or a shell would
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while True:
            try:
                os.killpg(process.pid, 0)  # anything of the group still alive?
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "Streamlit outlived `simmim dashboard`"
            time.sleep(0.2)
    finally:
        stop_process_group(process)
