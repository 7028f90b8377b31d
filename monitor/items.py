"""One item as every entry point shows it: its fields, source name and scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session

from monitor.models import Score
from simmim.models import Item, Source


@dataclass
class ItemDetail:
    id: int
    title: str | None
    text: str | None
    url: str | None
    image_sha256: str | None
    source_id: int
    source_name: str
    published_at: datetime | None
    crawled_at: datetime
    status: str
    error: str | None
    sentiment_label: str | None = None  # None: not scored yet
    sentiment: float | None = None
    confidence: float | None = None
    topics: list[tuple[str, float]] = field(default_factory=list)
    tickers: list[str] = field(default_factory=list)


def item_details(session: Session, ids: Sequence[int]) -> dict[int, ItemDetail]:
    """These items (those that exist), with their source and scores, in one query."""
    if not ids:
        return {}
    rows = session.execute(
        select(Item, Source.name, Score)
        .join(Source, Source.id == Item.source_id)
        .outerjoin(Score, Score.item_id == Item.id)
        .where(Item.id.in_(list(ids)))
    ).all()
    details = {}
    for item, source_name, score in rows:
        detail = ItemDetail(
            id=item.id,
            title=item.title,
            text=item.text,
            url=item.url,
            image_sha256=item.image_sha256,
            source_id=item.source_id,
            source_name=source_name,
            published_at=item.published_at,
            crawled_at=item.crawled_at,
            status=item.status.value,
            error=item.error,
        )
        if score is not None:
            detail.sentiment_label = score.label
            detail.sentiment = score.sentiment
            detail.confidence = score.confidence
            detail.topics = [(str(name), float(weight)) for name, weight in score.topics or []]
            detail.tickers = list(score.tickers or [])
        details[item.id] = detail
    return details


@dataclass
class HitScores:
    """A search result's scores (its own fields and source name come with the result)."""

    sentiment_label: str
    sentiment: float
    confidence: float
    topics: list[str] = field(default_factory=list)
    tickers: list[str] = field(default_factory=list)


# Built once: on every API search's path, where building and keying the statement per call
# cost more than the read.
SCORES_BY_ITEM = select(
    Score.item_id, Score.label, Score.sentiment, Score.confidence, Score.topics, Score.tickers
).where(Score.item_id.in_(bindparam("ids", expanding=True)))


def hit_scores(engine: Engine, item_ids: Sequence[int]) -> dict[int, HitScores]:
    """Scores of these items (those scored), in one narrow query on a plain connection."""
    if not item_ids:
        return {}
    with engine.connect() as connection:
        return {
            row.item_id: HitScores(
                row.label,
                row.sentiment,
                row.confidence,
                [str(name) for name, _ in row.topics or []],
                list(row.tickers or []),
            )
            for row in connection.execute(SCORES_BY_ITEM, {"ids": list(item_ids)}).all()
        }
