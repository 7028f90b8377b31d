"""Search filters from the monitor's scores: "only items about these topics / with this
sentiment", as SQL conditions for :class:`indexer.search.SearchFilters`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select

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
