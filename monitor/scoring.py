"""Scoring: every indexed item that has no score yet gets sentiment, topics, tickers and
saved-query matches, written as one Score row and its Tag rows (the series trends read).

Progress is the data itself (items without a Score row), so an interrupted run resumes
where it stopped and a re-run scores nothing twice. Topic vectors come from the fused
index, so image-only items get topics too; scoring never re-encodes an item.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from encoder import Encoder
from indexer.index import Space, StoreSet
from monitor import rollup
from monitor.models import Score, SeriesKind, Tag
from monitor.queries import QueryVector, active_query_vectors
from monitor.sentiment import SentimentScorer, make_scorer
from monitor.sentiment.per_ticker import score_per_ticker
from monitor.sentiment.token_vectors import shared_token_vectors
from monitor.tickers import TickerExtractor
from monitor.topic_model import TopicClassifier
from monitor.topics import TopicScorer
from monitor.trends import hour_of
from simmim.db import session_factory, session_scope
from simmim.errors import ConfigError
from simmim.models import Item, ItemStatus, item_text
from simmim.paths import DataLayout
from simmim.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ScoreSummary:
    scored: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    topics: dict[str, int] = field(default_factory=dict)
    tickers: dict[str, int] = field(default_factory=dict)
    query_matches: dict[str, int] = field(default_factory=dict)
    stopped: bool = False

    def merge(self, other: ScoreSummary) -> None:
        self.scored += other.scored
        for mine, theirs in (
            (self.labels, other.labels),
            (self.topics, other.topics),
            (self.tickers, other.tickers),
            (self.query_matches, other.query_matches),
        ):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count


class Scorers:
    """What scoring needs, built once per process (topic prompts are embedded here)."""

    def __init__(
        self,
        settings: Settings,
        encoder: Encoder | None,
        *,
        sentiment: SentimentScorer | None = None,
    ) -> None:
        """``encoder`` None: no model could be loaded; sentiment, tickers and keyword topics
        still work (zero-shot topics and saved queries need the model)."""
        config = settings.monitor
        self.sentiment = sentiment or make_scorer(
            config.sentiment, model=config.sentiment_model, cache_dir=settings.cache_dir
        )
        self.topics = topic_scorer(settings, encoder)
        self.tickers = TickerExtractor(
            config.companies, user_file=DataLayout(settings.data_dir).companies
        )
        self.encoder = encoder

    @property
    def sentiment_id(self) -> str:
        return f"{self.sentiment.name}@{self.sentiment.version}"

    @property
    def topic_id(self) -> str:
        return f"{self.topics.name}@{self.topics.version}"

    @property
    def ticker_id(self) -> str:
        return f"{self.tickers.name}@{self.tickers.version}"


def topic_scorer(settings: Settings, encoder: Encoder | None) -> TopicScorer:
    """The taxonomy's classifier and the event topics, with what can be loaded here."""
    config = settings.monitor
    try:
        tokens = shared_token_vectors(None, settings.cache_dir)
    except ConfigError as exc:  # no MiniLM wheel: keywords (and CLIP) only
        log.warning("topics without MiniLM: %s", exc)
        tokens = None
    classifier = None
    if tokens is not None and (config.topic_model or "").lower() != "none":
        folder = Path(config.topic_model) if config.topic_model else None
        classifier = TopicClassifier(folder, tokens=tokens)
    from monitor.topic_admin import event_topics

    return TopicScorer.build(
        event_topics(settings),
        encoder,
        threshold=config.topic_threshold,
        vector_weight=config.topic_vector_weight,
        tokens=tokens,
        classifier=classifier,
    )


def _vectors(indexes: StoreSet | None, space: str, ids: list[int]) -> dict[int, np.ndarray]:
    index = indexes.spaces.get(Space(space)) if indexes is not None else None
    if index is None or not index.count or not ids:
        return {}
    try:
        found = index.vectors(np.asarray(ids, np.int64))
        return dict(zip(ids, found, strict=True))
    except RuntimeError:  # some ids not in this space (e.g. text-only items, image space)
        out = {}
        for item_id in ids:
            try:
                out[item_id] = index.vectors(np.asarray([item_id], np.int64))[0]
            except RuntimeError:
                continue
        return out


def unscored_count(engine: Engine) -> int:
    with session_scope(session_factory(engine)) as session:
        return (
            session.scalar(
                select(func.count(Item.id))
                .outerjoin(Score, Score.item_id == Item.id)
                .where(Item.status == ItemStatus.INDEXED, Score.item_id.is_(None))
            )
            or 0
        )


def score_new_items(
    settings: Settings,
    engine: Engine,
    scorers: Scorers,
    indexes: StoreSet | None,
    *,
    stop: threading.Event | None = None,
) -> ScoreSummary:
    """Score every indexed, unscored item in batches; ``stop`` ends it between batches.

    Without a model (``scorers.encoder`` None, ``indexes`` None) pending items are scored
    too, by text alone: sentiment and tickers are the same either way, and the trends and
    alerts that rest on them should not wait for the model."""
    ready = (
        [ItemStatus.INDEXED]
        if scorers.encoder is not None
        else [ItemStatus.INDEXED, ItemStatus.PENDING]
    )
    summary = ScoreSummary()
    factory = session_factory(engine)
    queries = active_query_vectors(settings, engine, scorers.encoder) if scorers.encoder else []
    batch = settings.monitor.score_batch
    after = 0
    while True:
        if stop is not None and stop.is_set():
            summary.stopped = True
            break
        done = ScoreSummary()
        try:
            with session_scope(factory) as session:
                items = list(
                    session.scalars(
                        select(Item)
                        .outerjoin(Score, Score.item_id == Item.id)
                        .where(
                            Item.status.in_(ready),
                            Score.item_id.is_(None),
                            Item.id > after,
                        )
                        .order_by(Item.id)
                        .limit(batch)
                    )
                )
                if not items:
                    break
                _score_batch(session, items, scorers, indexes, queries, done)
        except IntegrityError:
            # Another scorer stored some of these items meanwhile (the run lock makes this
            # rare): nothing of this batch was kept; read it again without those items.
            log.info("items of this batch were scored elsewhere meanwhile; reading it again")
            continue
        after = items[-1].id
        summary.merge(done)
    return summary


def _score_batch(
    session: Session,
    items: list[Item],
    scorers: Scorers,
    indexes: StoreSet | None,
    queries: list[QueryVector],
    summary: ScoreSummary,
) -> None:
    ids = [item.id for item in items]
    texts = [item_text(item.title, item.text) or "" for item in items]
    sentiments = scorers.sentiment.score(texts)
    tickers_of = [scorers.tickers.extract(text) for text in texts]
    by_ticker = score_per_ticker(texts, tickers_of, sentiments, scorers.sentiment, scorers.tickers)
    matrix = None
    if scorers.encoder is not None:
        fused = _vectors(indexes, "fused", ids)
        dim = scorers.encoder.dim
        matrix = np.stack([fused.get(i, np.zeros(dim, np.float32)) for i in ids])
    topic_hits = scorers.topics.score(texts, matrix)
    by_space = {space: _vectors(indexes, space, ids) for space in {q.space for q in queries}}
    scores, tags = [], []
    for item, sentiment, hits, tickers, ticker_sentiment in zip(
        items, sentiments, topic_hits, tickers_of, by_ticker, strict=True
    ):
        at = item.published_at or item.crawled_at
        hour = hour_of(at)
        negative = int(sentiment.label == "negative")
        common = {
            "item_id": item.id,
            "hour": hour,
            "sentiment": sentiment.score,
            "negative": negative,
        }
        scores.append(
            {
                "item_id": item.id,
                "source_id": item.source_id,
                "at": at,
                "hour": hour,
                "label": sentiment.label,
                "sentiment": sentiment.score,
                "confidence": sentiment.confidence,
                "negative": negative,
                "sentiment_scorer": scorers.sentiment_id,
                "topic_scorer": scorers.topic_id,
                "ticker_scorer": scorers.ticker_id,
                "topics": [[h.name, h.score] for h in hits],
                "tickers": tickers,
            }
        )
        summary.labels[sentiment.label] = summary.labels.get(sentiment.label, 0) + 1
        for hit in hits:
            tags.append({**common, "kind": SeriesKind.TOPIC, "key": hit.name, "weight": hit.score})
            summary.topics[hit.name] = summary.topics.get(hit.name, 0) + 1
        for ticker in tickers:
            own = ticker_sentiment[ticker]  # the clauses about this ticker, where told apart
            tags.append(
                {
                    **common,
                    "sentiment": own.score,
                    "negative": int(own.label == "negative"),
                    "kind": SeriesKind.TICKER,
                    "key": ticker,
                    "weight": 1.0,
                }
            )
            summary.tickers[ticker] = summary.tickers.get(ticker, 0) + 1
        for query in queries:
            vector = by_space[query.space].get(item.id)
            if vector is None:
                continue
            cosine = float(vector @ query.vector)
            if cosine >= query.threshold:
                tags.append(
                    {**common, "kind": SeriesKind.QUERY, "key": str(query.id), "weight": cosine}
                )
                summary.query_matches[query.name] = summary.query_matches.get(query.name, 0) + 1
    session.execute(insert(Score), scores)
    if tags:
        session.execute(insert(Tag), tags)
    rollup.add(session, rollup.collect(scores, tags))  # same transaction: never disagree
    summary.scored += len(items)


def clear_outdated(engine: Engine, scorers: Scorers) -> int:
    """Drop scores made by other scorer versions, so the next run re-scores those items."""
    with session_scope(session_factory(engine)) as session:
        stale = select(Score.item_id).where(
            or_(
                Score.sentiment_scorer != scorers.sentiment_id,
                Score.topic_scorer != scorers.topic_id,
                Score.ticker_scorer != scorers.ticker_id,
            )
        )
        ids = list(session.scalars(stale))
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            session.execute(delete(Tag).where(Tag.item_id.in_(chunk)))
            session.execute(delete(Score).where(Score.item_id.in_(chunk)))
        if ids:
            rollup.rebuild(session)
        return len(ids)
