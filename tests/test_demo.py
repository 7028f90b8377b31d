"""End to end: the demo pipeline on a small seeded corpus, in a temp data directory."""

from __future__ import annotations

import email
from email.policy import default
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from app.demo.corpus import BURST_TICKER, BURST_TOPIC, KNOWN_HEADLINE, CorpusSpec
from app.demo.mail import OutboxServer
from app.demo.run import DemoError, run_demo
from app.demo.site import Site
from simmim.paths import DataLayout

SPEC = CorpusSpec(days=16, per_day=6, burst_per_day=10)


def _search(settings, engine, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    from encoder import load_encoder
    from indexer.index import IndexSet
    from indexer.search import search

    encoder = load_encoder(settings)
    indexes = IndexSet(settings, encoder.fingerprint, encoder.dim, read_only=True)
    return [r.title or "" for r in search(engine, encoder, indexes, text=text, space="text", k=3)]


def test_demo_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.alerts import list_alerts
    from monitor.cycle import Runtime
    from simmim.db import make_engine, session_factory, session_scope
    from simmim.models import Source
    from simmim.settings import load_settings

    monkeypatch.delenv("SIMMIM_DATA_DIR")  # the demo's config file names its data directory
    data = tmp_path / "demo"
    result = run_demo(data, spec=SPEC, model="tiny")  # the default training, as `simmim demo`
    assert all(ok for _, ok, _ in result.steps), result.steps
    assert "simmim-tiny" in result.model
    assert sum(result.items_by_source.values()) > 150

    # The burst fired for the right company and the right topic.
    settings = load_settings(result.config_file)
    engine = make_engine(settings.database_url)
    alerts = list_alerts(engine)
    fired = {(a.series_kind.value, a.series_key) for a in alerts if a.status.value == "firing"}
    assert ("ticker", BURST_TICKER) in fired
    assert ("topic", BURST_TOPIC) in fired

    # Exactly one email, with the chart and example links, in the outbox.
    emails = sorted((data / "outbox").glob("*.eml"))
    assert len(emails) == 1
    message = email.message_from_bytes(emails[0].read_bytes(), policy=default)
    text = message.get_body(("plain",)).get_content()
    assert f"ticker {BURST_TICKER}" in text and "layoffs" in text
    assert "http://127.0.0.1:" in text  # example items link to their pages
    assert any(p.get_content_type() == "image/png" for p in message.walk())

    # A known headline is found by text search.
    assert KNOWN_HEADLINE in _search(settings, engine, KNOWN_HEADLINE)
    # Duplicate headlines are folded: no title twice among the demo's search results
    # (untitled posts and pictures have no headline to repeat; which come up varies).
    for search in result.searches:
        titles = [r.title for r in search.results if r.title]
        assert len(titles) == len(set(titles)), search.label

    # The evaluation ran on the held-out items and was kept for `simmim status`.
    from encoder.train.evaluation import last_report

    report = result.retrieval
    assert report is not None and report.n >= 10
    assert set(report.directions) == {
        "text_to_image",
        "image_to_text",
        "fused_text_to_item",
        "fused_image_to_item",
    }
    assert all(0 <= m["r1"] <= m["r5"] <= m["r10"] <= 1 for m in report.directions.values())
    kept = last_report(DataLayout(data))
    assert kept is not None and kept.directions == report.directions

    # A second cycle (site up again on its port, a fresh mail server) sends nothing new.
    with session_scope(session_factory(engine)) as session:
        location = session.scalars(select(Source.location)).first()
    port = urlparse(location).port
    with Site(data / "demo-site", port=port), OutboxServer(tmp_path / "second-outbox") as mail:
        again = load_settings(
            result.config_file,
            crawler={"allow_loopback": True, "per_host_interval_s": 0.0},
            smtp={
                "host": "127.0.0.1",
                "port": mail.port,
                "security": "none",
                "recipients": ["a@demo.invalid"],
            },
        )
        runs = Runtime(again, engine).run_once()
        assert all(r.ok for r in runs), [r.error for r in runs]
        by_step = {r.job: r.summary for r in runs}
        assert by_step["crawl"]["new"] == 0 and by_step["crawl"]["failed_sources"] == []
        assert by_step["detect"]["fired"] == [] and by_step["notify"]["emails"] == 0
        assert mail.saved == []

        # Losing the index files: the next cycle rebuilds them from the database.
        for path in (data / "indexes").iterdir():
            path.unlink()
        runs = Runtime(again, engine).run_once(("index",))
        assert runs[0].ok and runs[0].summary["indexed"] >= 150
    assert KNOWN_HEADLINE in _search(settings, engine, KNOWN_HEADLINE)


def test_demo_refuses_a_directory_that_is_not_its_own(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DemoError, match="not a demo directory"):
        run_demo(tmp_path, spec=SPEC, model="tiny", train_epochs=1)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
