"""Seed scored items straight into the tables (fast), for trends, detection and email tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select, text

from monitor import rollup
from monitor.models import Score, SeriesKind, Tag
from monitor.trends import hour_of
from simmim.db import session_factory, session_scope
from simmim.models import Item, ItemStatus, Source, SourceKind

T0 = datetime(2026, 10, 1, tzinfo=UTC)


@dataclass
class Row:
    at: datetime
    sentiment: float = 0.0
    tickers: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    source: str = "wire"
    title: str = ""


def seed(engine: Engine, rows: Iterable[Row]) -> None:
    factory = session_factory(engine)
    with session_scope(factory) as session:
        sources = {s.name: s.id for s in session.scalars(select(Source))}
        next_id = (session.scalar(select(Item.id).order_by(Item.id.desc()).limit(1)) or 0) + 1
        items, scores, tags = [], [], []
        for row in rows:
            if row.source not in sources:
                source = Source(
                    name=row.source, kind=SourceKind.RSS, location=f"http://x/{row.source}"
                )
                session.add(source)
                session.flush()
                sources[row.source] = source.id
            item_id = next_id
            next_id += 1
            label = (
                "negative"
                if row.sentiment < -0.3
                else "positive"
                if row.sentiment > 0.3
                else "neutral"
            )
            negative = int(label == "negative")
            hour = hour_of(row.at)
            items.append(
                {
                    "id": item_id,
                    "source_id": sources[row.source],
                    "title": row.title or f"item {item_id}",
                    "url": f"http://example.test/{item_id}",
                    "published_at": row.at,
                    "crawled_at": row.at,
                    "status": ItemStatus.INDEXED,
                    "indexed_spaces": 2,
                }
            )
            scores.append(
                {
                    "item_id": item_id,
                    "source_id": sources[row.source],
                    "at": row.at,
                    "hour": hour,
                    "label": label,
                    "sentiment": row.sentiment,
                    "confidence": 0.9,
                    "negative": negative,
                    "sentiment_scorer": "test@1",
                    "topic_scorer": "test@1",
                    "topics": [[t, 1.0] for t in row.topics],
                    "tickers": list(row.tickers),
                }
            )
            common = {
                "item_id": item_id,
                "hour": hour,
                "sentiment": row.sentiment,
                "negative": negative,
            }
            tags += [
                {**common, "kind": SeriesKind.TICKER, "key": t, "weight": 1.0} for t in row.tickers
            ]
            tags += [
                {**common, "kind": SeriesKind.TOPIC, "key": t, "weight": 1.0} for t in row.topics
            ]
        if items:
            session.execute(insert(Item), items)
            session.execute(insert(Score), scores)
        if tags:
            session.execute(insert(Tag), tags)
        rollup.add(session, rollup.collect(scores, tags))
        if items and session.bind is not None and session.bind.dialect.name == "postgresql":
            # explicit ids do not move PostgreSQL's sequence: move it, so later inserts fit
            session.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('indexer_item', 'id'),"
                    " (SELECT max(id) FROM indexer_item))"
                )
            )


def daily(
    counts: list[int],
    *,
    ticker: str = "ACME",
    sentiment: float = 0.0,
    negatives: list[int] | None = None,
    start: datetime = T0,
    topic: str | None = None,
) -> list[Row]:
    """counts[d] items on day d (spread over the day), negatives[d] of them negative."""
    rows = []
    for day, n in enumerate(counts):
        neg = negatives[day] if negatives else 0
        for i in range(n):
            at = start + timedelta(days=day, minutes=(i * 1440) // max(n, 1))
            rows.append(
                Row(
                    at,
                    sentiment=-0.8 if i < neg else sentiment,
                    tickers=(ticker,),
                    topics=(topic,) if topic else (),
                    title=f"{ticker} day {day} #{i}",
                )
            )
    return rows
