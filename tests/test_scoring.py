"""Scoring new items with the tiny model: sentiment, topics, tickers, saved-query matches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from indexer.index import IndexSet
from indexer.pipeline.runner import run_ingest
from monitor.companies import add_company
from monitor.models import Score, SeriesKind, Tag
from monitor.queries import QueryError, save_query
from monitor.scoring import Scorers, clear_outdated, score_new_items, unscored_count
from monitor.tickers import TickerExtractor
from monitor.topics import DEFAULT_TOPICS, TopicScorer
from simmim.db import make_engine, session_factory, session_scope
from simmim.migrations import upgrade
from simmim.models import Item, Source, SourceKind
from simmim.paths import DataLayout
from simmim.settings import Settings
from tests.encoder_fixtures import store_picture, tiny_settings

TEXTS = [
    (
        "Acme Corp net loss widened, shares tumble",
        "$ACME falls after the company cut its guidance.",
    ),
    ("Fed raises interest rates by 25 basis points", None),
    ("Bitcoin rallies to a record high", "Crypto markets cheer."),
    ("Nice weather in Helsinki today", None),
    ("Apple's profit rose 12 % while Intel's revenue fell 20 %.", None),
]


@pytest.fixture
def setup(tmp_path: Path, tiny_weights: Path, tiny_encoder):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, encoder=tiny_settings(tiny_weights))  # type: ignore[arg-type]
    engine = make_engine(settings.database_url)
    upgrade(engine)
    layout = DataLayout(tmp_path)
    layout.create()
    image_sha = store_picture(layout, 3)
    with session_scope(session_factory(engine)) as session:
        source = Source(name="wire", kind=SourceKind.RSS, location="http://x/feed")
        session.add(source)
        session.flush()
        for i, (title, text) in enumerate(TEXTS):
            session.add(Item(source_id=source.id, title=title, text=text, url=f"http://x/{i}"))
        session.add(Item(source_id=source.id, image_sha256=image_sha, url="http://x/img"))
    run_ingest(settings, engine, tiny_encoder)
    return settings, engine, tiny_encoder


def _indexes(settings: Settings, encoder) -> IndexSet:  # type: ignore[no-untyped-def]
    return IndexSet(settings, encoder.fingerprint, encoder.dim, read_only=True)


def test_every_indexed_item_scored_once(setup) -> None:  # type: ignore[no-untyped-def]
    settings, engine, encoder = setup
    scorers = Scorers(settings, encoder)
    assert unscored_count(engine) == 6
    summary = score_new_items(settings, engine, scorers, _indexes(settings, encoder))
    assert summary.scored == 6 and unscored_count(engine) == 0
    assert summary.labels["negative"] >= 1
    assert summary.tickers == {"ACME": 1, "AAPL": 1, "INTC": 1}
    with session_scope(session_factory(engine)) as session:
        scores = {s.item_id: s for s in session.scalars(select(Score))}
        acme = scores[1]
        assert acme.label == "negative" and acme.tickers == ["ACME"]
        assert acme.sentiment_scorer == scorers.sentiment_id and scorers.sentiment_id.startswith(
            "finance@"
        )
        assert acme.topic_scorer.startswith("topics@2:")
        fed_topics = [name for name, _ in scores[2].topics]
        assert "central banks and rates" in fed_topics
        assert "crypto" in [name for name, _ in scores[3].topics]
        tags = session.execute(select(Tag.kind, Tag.key).where(Tag.item_id == 1)).all()
        assert (SeriesKind.TICKER, "ACME") in tags
    # A second run scores nothing twice.
    assert score_new_items(settings, engine, scorers, _indexes(settings, encoder)).scored == 0


def test_ticker_series_get_the_sentiment_of_their_own_clause(setup) -> None:  # type: ignore[no-untyped-def]
    settings, engine, encoder = setup
    score_new_items(settings, engine, Scorers(settings, encoder), _indexes(settings, encoder))
    with session_scope(session_factory(engine)) as session:
        tags = {t.key: t for t in session.scalars(select(Tag).where(Tag.kind == SeriesKind.TICKER))}
    assert tags["AAPL"].sentiment > 0 and tags["AAPL"].negative == 0
    assert tags["INTC"].sentiment < 0 and tags["INTC"].negative == 1


def test_switching_scorer_then_rescore_scores_everything_again(setup) -> None:  # type: ignore[no-untyped-def]
    settings, engine, encoder = setup
    score_new_items(settings, engine, Scorers(settings, encoder), _indexes(settings, encoder))
    settings.monitor.sentiment = "finance-rules"
    rules = Scorers(settings, encoder)
    assert rules.sentiment_id == "finance-rules@1"
    assert clear_outdated(engine, rules) == 6
    assert score_new_items(settings, engine, rules, _indexes(settings, encoder)).scored == 6
    with session_scope(session_factory(engine)) as session:
        assert set(session.scalars(select(Score.sentiment_scorer))) == {"finance-rules@1"}


def test_saved_query_matches_new_items(setup) -> None:  # type: ignore[no-untyped-def]
    settings, engine, encoder = setup
    query = save_query(
        settings, engine, encoder, name="fed watch", text=TEXTS[1][0], space="text", threshold=0.999
    )
    summary = score_new_items(
        settings, engine, Scorers(settings, encoder), _indexes(settings, encoder)
    )
    assert summary.query_matches == {"fed watch": 1}
    with session_scope(session_factory(engine)) as session:
        matched = session.scalars(
            select(Tag.item_id).where(Tag.kind == SeriesKind.QUERY, Tag.key == str(query.id))
        ).all()
        assert matched == [2]
    with pytest.raises(QueryError, match="exists"):
        save_query(settings, engine, encoder, name="fed watch", text="x")
    with pytest.raises(QueryError, match="space"):
        save_query(settings, engine, encoder, name="other", text="x", space="audio")


def test_rescore_clears_only_other_versions(setup) -> None:  # type: ignore[no-untyped-def]
    settings, engine, encoder = setup
    scorers = Scorers(settings, encoder)
    score_new_items(settings, engine, scorers, _indexes(settings, encoder))
    assert clear_outdated(engine, scorers) == 0
    with session_scope(session_factory(engine)) as session:
        session.execute(
            Score.__table__.update().where(Score.item_id == 1).values(sentiment_scorer="old@0")
        )
    assert clear_outdated(engine, scorers) == 1
    with session_scope(session_factory(engine)) as session:
        assert session.scalar(select(func.count(Tag.id)).where(Tag.item_id == 1)) == 0
    assert score_new_items(settings, engine, scorers, _indexes(settings, encoder)).scored == 1


def test_image_only_items_get_topics_from_their_vector(tiny_encoder) -> None:  # type: ignore[no-untyped-def]
    topics = TopicScorer.build(DEFAULT_TOPICS, tiny_encoder, threshold=0.5)
    crypto = [t.name for t in topics.topics].index("crypto")
    vector = topics._prompts[crypto : crypto + 1] * 1.0
    hits = topics.score([""], vector)[0]
    assert hits and hits[0].name == "crypto"
    # No vector and no words: no topic (uniform over topics + background is below threshold).
    assert topics.score([""], np.zeros((1, tiny_encoder.dim), np.float32))[0] == []
    assert [h.name for h in topics.score(["Layoffs at the plant: job cuts"], None)[0]] == [
        "layoffs"
    ]
    assert topics.score(["Layoffs at the plant"], None)[0] == []  # one keyword alone: no


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$AAPL and $tsla up today", ["AAPL", "TSLA"]),
        ("Apple beats estimates; Microsoft lags", ["AAPL", "MSFT"]),
        ("NVDA rallies while IT spending slows", ["NVDA"]),
        ("ALL IN ON THE FED CUT, CEO SAYS", []),  # shouting: no bare symbols
        ("The CEO said it is all good", []),
        ("Ate an apple at the bank of the river", []),
        ("Bank of America and JPMorgan report", ["BAC", "JPM"]),
        ("Shares of ACME jumped", ["ACME"]),
    ],
)
def test_tickers(text: str, expected: list[str]) -> None:
    assert TickerExtractor({"ACME": ["Acme Corp"]}).extract(text) == expected


def test_adding_a_company_then_rescore_tags_it(setup) -> None:  # type: ignore[no-untyped-def]
    settings, engine, encoder = setup
    score_new_items(settings, engine, Scorers(settings, encoder), _indexes(settings, encoder))
    add_company(settings, "NWT", "Nice Weather Tours", ["Helsinki"])  # item 4 names Helsinki
    scorers = Scorers(settings, encoder)
    assert clear_outdated(engine, scorers) == 6  # the table changed: every item re-tagged
    score_new_items(settings, engine, scorers, _indexes(settings, encoder))
    with session_scope(session_factory(engine)) as session:
        keys = set(session.scalars(select(Tag.key).where(Tag.kind == SeriesKind.TICKER)))
    assert "NWT" in keys and {"AAPL", "INTC"} <= keys
