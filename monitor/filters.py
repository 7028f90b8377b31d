"""Search filters from the monitor's scores: "only items about these topics / with this
sentiment", as SQL conditions for :class:`indexer.search.SearchFilters`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, select

from indexer.search import SearchFilters
from monitor.models import Score, SeriesKind, Tag
from simmim.models import Item


def topic_condition(topics: Sequence[str]) -> ColumnElement[bool]:
    return Item.id.in_(
        select(Tag.item_id).where(Tag.kind == SeriesKind.TOPIC, Tag.key.in_(list(topics)))
    )


def ticker_condition(tickers: Sequence[str]) -> ColumnElement[bool]:
    return Item.id.in_(
        select(Tag.item_id).where(Tag.kind == SeriesKind.TICKER, Tag.key.in_(list(tickers)))
    )


def sentiment_condition(labels: Sequence[str]) -> ColumnElement[bool]:
    return Item.id.in_(select(Score.item_id).where(Score.label.in_(list(labels))))


def search_filters(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    sources: Sequence[int] = (),
    topics: Sequence[str] = (),
    tickers: Sequence[str] = (),
    sentiments: Sequence[str] = (),
) -> SearchFilters:
    """The one way every entry point (dashboard, API) turns search filters into SQL."""
    conditions = []
    if topics:
        conditions.append(topic_condition(topics))
    if tickers:
        conditions.append(ticker_condition(tickers))
    if sentiments:
        conditions.append(sentiment_condition(sentiments))
    return SearchFilters(since=since, until=until, source_ids=sources, conditions=conditions)
