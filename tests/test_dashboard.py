"""Every dashboard page through Streamlit's AppTest, on a seeded and on an empty data dir."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from app.cli.dashboard_cmd import app_file

pytest_plugins = ["tests.dashboard_fixtures"]
PAGES = [
    "views/search.py",
    "views/trends.py",
    "views/alerts.py",
    "views/sources.py",
    "views/system.py",
]


@pytest.fixture(autouse=True)
def _fresh_login_limits() -> None:
    """Login limits live for the process: each test starts without another's failures."""
    from dashboard import auth

    auth._LIMITER.failures.clear()
    auth._LIMITER.clients.clear()


def app() -> AppTest:
    at = AppTest.from_file(str(app_file()), default_timeout=120)
    at.run()
    return at


def page(name: str) -> AppTest:
    at = app()
    at.switch_page(name)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += (
        [e.value for e in at.info] + [e.value for e in at.error] + [e.value for e in at.success]
    )
    parts += [t.value for t in at.title] + [s.value for s in at.subheader]
    parts += [e.label for e in at.expander]
    return "\n".join(str(p) for p in parts)


def test_search_finds_a_headline_and_explains_it(seeded_env: Path) -> None:
    at = page("views/search.py")
    at.text_input[0].input("Fed raises interest rates by 25 basis points")
    at.radio(key="space").set_value("text")
    at.button[0].click()  # the form's submit button
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    assert "result(s)" in shown
    titles = [m.value for m in at.markdown if m.value.startswith("**#")]
    assert titles[0] == "**#1** · **Fed raises interest rates by 25 basis points**"
    at.toggle[0].set_value(True).run()
    assert not at.exception
    assert "the words the match leaned on" in texts(at)


def test_search_filters_by_sentiment(seeded_env: Path) -> None:
    at = page("views/search.py")
    at.text_input[0].input("Acme shares")
    at.radio(key="space").set_value("text")
    at.multiselect[3].set_value(["negative"])  # sources, topics, companies, sentiment
    at.button[0].click().run()
    assert not at.exception
    titles = [m.value for m in at.markdown if m.value.startswith("**#")]
    assert titles and all("Acme" in t or "ACME" in t for t in titles)
    finance = [m.value for m in at.markdown if "negative]" in m.value]
    assert finance, "each card says its sentiment"


def test_search_cards_read_as_finance_results_and_download(seeded_env: Path) -> None:
    """Issue 35: cards hid sentiment, companies and topics, had no rank, and a bare cosine."""
    at = page("views/search.py")
    at.text_input[0].input("Acme shares")
    at.radio(key="space").set_value("text")
    companies = at.multiselect[2]
    assert "ACME" in companies.options[0]  # labelled, so typing finds it
    companies.set_value(["ACME"])
    at.button[0].click().run()
    assert not at.exception
    titles = [m.value for m in at.markdown if m.value.startswith("**#")]
    assert titles and titles[0].startswith("**#1** ·")
    marks = ("▼ negative]", "▲ positive]", "● neutral")
    finance = [m.value for m in at.markdown if any(mark in m.value for mark in marks)]
    assert len(finance) == len(titles)  # every card has its sentiment line
    assert all("`ACME`" in line for line in finance)  # and names the company filtered on
    bars = [b.proto.text for b in at.get("progress")]
    assert bars and bars[0].startswith("match 100% of the best")
    [button] = at.get("download_button")
    assert button.proto.label == "Download CSV"


def test_save_search_as_monitor(seeded_env: Path) -> None:
    at = page("views/search.py")
    at.text_input[0].input("Bitcoin")
    at.button[0].click().run()
    at.text_input[1].input("crypto watch")
    save = next(b for b in at.button if b.label == "Save as monitor")
    save.click().run()
    assert not at.exception
    assert "Saved monitor 'crypto watch'" in texts(at)


def test_trends_show_charts_and_bucket_items(seeded_env: Path) -> None:
    at = page("views/trends.py")
    at.selectbox[0].set_value("ticker").run()
    assert not at.exception
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3
    assert "alert(s) fired" in texts(at)
    shown = texts(at)
    assert "ACME day 19" in shown  # the newest bucket's items
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV"]


def test_trend_charts_share_a_fitted_range_and_mask_thin_buckets(seeded_env: Path) -> None:
    """Issue 35: lines zigzagged between -1 and +1 on 1-4 items per bucket, small charts had
    another x-range than the big one, and 30 days were drawn for 14 of data."""
    import json

    at = page("views/trends.py")
    at.selectbox[0].set_value("ticker").run()
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    domains = {
        json.dumps(layer["encoding"]["x"]["scale"]["domain"])
        for spec in specs
        for layer in spec["layer"]
        if "x" in layer.get("encoding", {})
    }
    assert len(domains) == 1  # one x-range for all three charts
    first_day = datetime.fromisoformat(json.loads(domains.pop())[0])
    assert (datetime.now(UTC) - first_day).days <= 21  # the data's 20 days, not the view's 30
    assert "Faded points: buckets with fewer than 5 items" in texts(at)
    mean_chart = specs[1]
    assert any(
        layer["mark"].get("opacity") == 0.35
        for layer in mean_chart["layer"]
        if isinstance(layer["mark"], dict)
    )
    colours = {
        json.dumps(layer["encoding"]["color"]["scale"]["range"])
        for spec in specs
        for layer in spec["layer"]
        if "color" in layer.get("encoding", {})
    }
    assert len(colours) == 1 and "#d62728" not in colours.pop()  # red is the alerts'


def test_alerts_acknowledge_changes_state(seeded_env: Path) -> None:
    from monitor.models import Alert
    from simmim.db import make_engine, session_factory, session_scope
    from simmim.settings import load_settings

    at = page("views/alerts.py")
    shown = texts(at)
    assert "Volume spike in ticker ACME" in shown or "Negative news surge for ticker ACME" in shown
    assert len(at.get("image")) >= 1  # the alert chart
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV"]
    ack = next(b for b in at.button if b.label == "Acknowledge")
    ack.click().run()
    assert not at.exception
    engine = make_engine(load_settings().database_url)
    with session_scope(session_factory(engine)) as session:
        acked = session.scalars(select(Alert).where(Alert.acknowledged_at.is_not(None))).all()
        assert len(acked) == 1


def test_rules_edit_and_create(seeded_env: Path) -> None:
    from monitor.rules import list_rules
    from simmim.db import make_engine
    from simmim.settings import load_settings

    at = page("views/alerts.py")
    at.toggle[0].set_value(False)
    next(b for b in at.button if b.label == "Save rule").click().run()
    assert not at.exception
    at.text_input[0].input("acme hourly")
    next(b for b in at.button if b.label == "Add rule").click().run()
    assert not at.exception and "Added rule" in texts(at)
    rules = {r.name: r for r in list_rules(make_engine(load_settings().database_url))}
    assert rules["topic volume spike"].enabled is False
    assert "acme hourly" in rules


def test_sources_add_and_disable(seeded_env: Path, tmp_path: Path) -> None:
    from simmim.db import make_engine, session_factory, session_scope
    from simmim.models import Source
    from simmim.settings import load_settings

    folder = tmp_path / "pictures"
    folder.mkdir()
    at = page("views/sources.py")
    assert "newswire" in str(at.dataframe[0].value)
    at.text_input[0].input(str(folder))
    at.selectbox[1].set_value("folder")
    next(b for b in at.button if b.label == "Add source").click().run()
    assert not at.exception and "Added source" in texts(at)
    next(b for b in at.button if b.label == "Disable").click().run()
    engine = make_engine(load_settings().database_url)
    with session_scope(session_factory(engine)) as session:
        sources = {s.name: s for s in session.scalars(select(Source))}
        assert any(s.kind.value == "folder" for s in sources.values())
        assert sum(not s.enabled for s in sources.values()) == 1


def test_system_page(seeded_env: Path) -> None:
    at = page("views/system.py")
    shown = texts(at)
    assert "simmim-tiny" in shown and "sqlite" in shown
    assert len(at.dataframe) == 2  # indexes, recent job runs
    assert "fused" in str(at.dataframe[0].value)
    assert "detect" in str(at.dataframe[1].value)
    assert "simmim eval retrieval" in shown  # not measured yet: says how
    tables = at.dataframe[0].value.to_csv() + at.dataframe[1].value.to_csv()
    assert "None" not in tables and "{" not in tables  # in words (issue 35)


def test_system_page_shows_the_last_evaluation_and_self_training(seeded_env: Path) -> None:
    from encoder.train.evaluation import RetrievalReport, save_report
    from encoder.train.self_training import FusionAttempt, _record
    from simmim.paths import DataLayout

    layout = DataLayout(seeded_env)
    m = {"r1": 0.25, "r5": 0.5, "r10": 0.75, "mrr": 0.4}
    save_report(
        layout,
        RetrievalReport(
            n=12,
            fusion="clip-mean",
            directions={"text_to_image": m, "fused_text_to_item": m},
            clip_mean={"fused_text_to_item": m},
        ),
    )
    _record(layout, FusionAttempt("20261128-120000", 40, 10, False, "not better by 0.02"))
    at = page("views/system.py")
    shown = texts(at)
    assert "12 held-out items" in shown
    frames = [str(frame.value) for frame in at.dataframe]
    assert any("fused text to item" in f and "0.75" in f for f in frames)
    assert any("not better by 0.02" in f for f in frames)


@pytest.mark.postgres
def test_system_page_shows_the_task_queue_and_failed_tasks(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, tiny_weights: Path
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    from monitor.models import JobRun
    from simmim.db import make_engine, session_factory, session_scope
    from simmim.migrations import upgrade

    monkeypatch.setenv("SIMMIM_DATABASE__URL", postgres_url)
    monkeypatch.setenv("SIMMIM_ENCODER__MODEL", "simmim-tiny")
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", str(tiny_weights))
    engine = make_engine(postgres_url)
    upgrade(engine)
    with engine.begin() as connection:
        task = connection.scalar(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, status, args, attempts)"
                " VALUES ('index', 'simmim.encode_batch', 'failed', '{\"slot\": 0}', 3)"
                " RETURNING id"
            )
        )
    now = datetime.now(UTC)
    with session_scope(session_factory(engine)) as session:
        session.add(
            JobRun(
                job="encode",
                started_at=now,
                finished_at=now,
                ok=False,
                runner="w7",
                error="EncoderError: weights missing",
                summary={"task": task},
            )
        )
    engine.dispose()
    at = page("views/system.py")
    assert not at.exception
    shown = texts(at)
    assert "Workers on PostgreSQL" in shown
    assert any("index" in str(frame.value) for frame in at.dataframe)
    assert any("weights missing" in e.value and "3 tries" in e.value for e in at.error)


@pytest.mark.parametrize("name", PAGES)
def test_empty_data_dir_shows_what_to_do(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_weights: Path
) -> None:
    from simmim.db import make_engine
    from simmim.migrations import upgrade
    from simmim.settings import load_settings

    monkeypatch.setenv("SIMMIM_ENCODER__MODEL", "simmim-tiny")
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", str(tiny_weights))
    upgrade(make_engine(load_settings().database_url))
    at = page(name)
    assert not at.error
    assert at.info, "an empty page must say what to do next"


def test_unmigrated_database_is_explained(tmp_path: Path) -> None:
    at = page("views/trends.py")
    assert "simmim init" in texts(at)


def test_password_gate(seeded_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMMIM_DASHBOARD__PASSWORD", "s3cret")
    at = app()
    assert not at.exception
    assert [t.value for t in at.title] == ["SimMIM"] and len(at.text_input) == 1
    assert "Search" not in texts(at)
    at.text_input[0].input("wrong").run()
    assert "Wrong password." in texts(at)
    at.text_input[0].input("s3cret").run()
    assert not at.exception
    assert "Search" in [t.value for t in at.title]


def test_password_attempts_are_limited_and_logged(
    seeded_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SIMMIM_DASHBOARD__PASSWORD", "s3cret")
    monkeypatch.setenv("SIMMIM_DASHBOARD__LOGIN_ATTEMPTS", "3")
    at = app()
    with caplog.at_level("WARNING", logger="simmim.dashboard.auth"):
        for attempt in range(3):
            at.text_input[0].input(f"guess-{attempt}").run()
            assert "Wrong password." in texts(at)
        at.text_input[0].input("s3cret").run()  # right, but inside the wait after 3 failures
    assert "Too many wrong passwords" in texts(at)
    assert "Search" not in [t.value for t in at.title]
    failures = [r.getMessage() for r in caplog.records if "wrong password" in r.getMessage()]
    assert len(failures) == 3
    assert all("guess-" not in r.getMessage() for r in caplog.records), "typed text never logged"


def test_a_new_session_per_guess_gains_nothing(
    seeded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 36, finding 12: the limit was per session, so a new session per guess had no
    limit at all."""
    monkeypatch.setenv("SIMMIM_DASHBOARD__PASSWORD", "s3cret")
    monkeypatch.setenv("SIMMIM_DASHBOARD__LOGIN_ATTEMPTS", "3")
    for attempt in range(3):
        at = app()
        at.text_input[0].input(f"guess-{attempt}").run()
        assert "Wrong password." in texts(at)
    at = app()
    at.text_input[0].input("s3cret").run()
    assert "Too many wrong passwords" in texts(at)
    assert "Search" not in [t.value for t in at.title]


def test_an_attack_from_elsewhere_does_not_lock_the_right_password_out(
    seeded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 36, finding 12: past the process-wide limit every attempt was refused, the
    right password too. Now the failing address is refused; another still gets in."""
    import time

    from dashboard import auth

    monkeypatch.setenv("SIMMIM_DASHBOARD__PASSWORD", "s3cret")
    limiter = auth._LIMITER
    for _ in range(auth.GLOBAL_FAILURES_PER_MINUTE):
        limiter.failed("203.0.113.9", time.monotonic(), 10**6)
    monkeypatch.setattr(auth, "_client_key", lambda: "203.0.113.9")
    attacker = app()
    attacker.text_input[0].input("s3cret").run()
    assert "Too many wrong passwords on this server" in texts(attacker)
    monkeypatch.setattr(auth, "_client_key", lambda: "198.51.100.7")
    user = app()
    user.text_input[0].input("s3cret").run()
    assert "Search" in [t.value for t in user.title]


def test_a_changed_password_logs_sessions_out(
    seeded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMMIM_DASHBOARD__PASSWORD", "first")
    at = app()
    at.text_input[0].input("first").run()
    assert "Search" in [t.value for t in at.title]
    monkeypatch.setenv("SIMMIM_DASHBOARD__PASSWORD", "second")
    at.run()
    assert "Search" not in [t.value for t in at.title]
    assert [t.value for t in at.title] == ["SimMIM"]


def test_single_sign_on_shows_only_the_login_button(
    seeded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SERVER_METADATA_URL": "https://login.example.org/.well-known/openid-configuration",
        "CLIENT_ID": "simmim",
        "CLIENT_SECRET": "x",
        "REDIRECT_URI": "https://dash.example.org/oauth2callback",
        "COOKIE_SECRET": "y",
    }.items():
        monkeypatch.setenv(f"SIMMIM_DASHBOARD__OIDC__{name}", value)
    at = app()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in with single sign-on"]
    assert "newswire" not in texts(at) and not at.dataframe


@pytest.mark.postgres
def test_system_page_masks_a_password_with_any_character(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, tiny_weights: Path
) -> None:
    """Issue 36, finding 9: a password holding / # ? was shown past its first /."""
    from simmim.db import make_engine
    from simmim.migrations import upgrade

    assert "://postgres@" in postgres_url  # trust auth: any password connects
    url = postgres_url.replace("://postgres@", "://postgres:PW/h0#r?se@")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("SIMMIM_DATABASE__URL", url)
    monkeypatch.setenv("SIMMIM_ENCODER__MODEL", "simmim-tiny")
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", str(tiny_weights))
    shown = texts(page("views/system.py"))
    assert "postgres:***@127.0.0.1" in shown and "PW" not in shown and "h0#r" not in shown


def test_sources_page_masks_credentials(seeded_env: Path) -> None:
    from simmim.db import make_engine, session_factory, session_scope
    from simmim.models import Source, SourceKind

    engine = make_engine(f"sqlite:///{seeded_env / 'simmim.db'}")
    with session_scope(session_factory(engine)) as session:
        session.add(
            Source(
                name="private feed",
                kind=SourceKind.RSS,
                location="https://desk:PW-h0rse@feeds.example.org/x.xml?token=TOK-staple",
                last_error="http 401: https://desk:PW-h0rse@feeds.example.org/x.xml",
            )
        )
    engine.dispose()
    at = page("views/sources.py")
    table = at.dataframe[0].value.to_csv()
    assert "feeds.example.org" in table
    assert "PW-h0rse" not in table and "TOK-staple" not in table


def test_search_and_system_pages_on_milvus_lite(
    seeded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same pages on the other backend: the seeded index copied into Milvus Lite."""
    from milvus_lite.server_manager import server_manager_instance

    from encoder import load_encoder
    from indexer.migrate import migrate_index, with_backend
    from simmim.db import make_engine
    from simmim.settings import Settings

    settings = Settings()
    engine = make_engine(settings.database_url)
    try:
        summary = migrate_index(
            settings, engine, load_encoder(settings), with_backend(settings, "milvus")
        )
    finally:
        engine.dispose()
    assert summary.copied["text"] > 4 and not summary.reencoded
    monkeypatch.setenv("SIMMIM_INDEX__BACKEND", "milvus")
    try:
        at = page("views/search.py")
        at.text_input[0].input("Fed raises interest rates by 25 basis points")
        at.radio(key="space").set_value("text")
        at.button[0].click()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        titles = [m.value for m in at.markdown if m.value.startswith("**#")]
        assert titles[0] == "**#1** · **Fed raises interest rates by 25 basis points**"
        at = page("views/system.py")
        assert "Indexes (milvus)" in texts(at)
        rows = at.dataframe[0].value
        assert "simmim_fused_" in rows.loc[rows["space"] == "fused", "where"].iloc[0]
    finally:
        server_manager_instance.release_server(str(seeded_env / "milvus.db"))


def test_sources_page_lists_a_sources_failed_records(seeded_env: Path) -> None:
    from simmim.db import make_engine, session_factory, session_scope
    from simmim.models import CrawlRun, Source

    engine = make_engine(f"sqlite:///{seeded_env / 'simmim.db'}")
    now = datetime.now(UTC)
    with session_scope(session_factory(engine)) as session:
        source = session.scalars(select(Source).where(Source.name == "newswire")).one()
        source_id = source.id
        session.add(
            CrawlRun(
                source_id=source.id,
                started_at=now,
                finished_at=now,
                ok=True,
                failed=1,
                reasons={
                    "counts": {"empty entry": 1},
                    "failures": [
                        {
                            "where": "http://news.test/9",
                            "reason": "empty entry",
                            "detail": "no text",
                        }
                    ],
                },
            )
        )
    engine.dispose()
    at = page("views/sources.py")
    assert not at.exception and [e.label for e in at.expander] == ["Failed records of wire (0)"]
    at.selectbox[0].set_value(source_id).run()
    assert [e.label for e in at.expander] == ["Failed records of newswire (1)"]
    assert "http://news.test/9" in at.dataframe[1].value.to_csv()
