"""Trends: per series and time bucket, volume, mean sentiment and negative share.

All aggregation is SQL: scoring keeps an hourly rollup per series (:mod:`monitor.rollup`),
and a trend is one GROUP BY over it on integer hour buckets, so its cost follows buckets,
not items. pandas only sees the aggregated rows, for empty buckets and rolling statistics.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Connection, Engine, Executable, func, select
from sqlalchemy.orm import Session

from indexer.text import content_key
from monitor.models import Score, SeriesHour, SeriesKind, Tag
from simmim.errors import SimmimError
from simmim.models import Item

COLUMNS = ["key", "bucket", "volume", "sentiment_sum", "sentiment_sq", "negative"]
Reader = Session | Connection | Engine
"""Read functions take the caller's session (one transaction, as detection needs) or, for a
one-off read, an engine."""


class TooManyPoints(SimmimError):
    """A trends request that would densify into more points than one answer may carry."""


class Metric(enum.StrEnum):
    """What a rule or a chart reads from a series, per bucket."""

    VOLUME = "volume"  # items
    NEGATIVE_SHARE = "negative_share"  # negative items / items
    MEAN_SENTIMENT = "mean_sentiment"  # sum of scores / items


def share(part: pd.Series, volume: pd.Series) -> pd.Series:
    """``part / volume``, NaN where there were no items (not 0, not inf)."""
    volume = volume.astype(float)
    return part.astype(float) / volume.where(volume > 0)


def metric_values(sums: pd.DataFrame, metric: Metric) -> pd.Series:
    """The one place a negative share or a mean sentiment is computed from bucket sums."""
    if metric is Metric.NEGATIVE_SHARE:
        return share(sums["negative"], sums["volume"])
    if metric is Metric.MEAN_SENTIMENT:
        return share(sums["sentiment_sum"], sums["volume"])
    return sums["volume"].astype(float)


def read_rows(reader: Reader, query: Executable) -> list[Any]:
    if isinstance(reader, Engine):
        with reader.connect() as connection:
            return list(connection.execute(query).all())
    return list(reader.execute(query).all())


def hour_of(when: datetime) -> int:
    """Whole hours since the epoch, UTC: the bucket clock of every series."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() // 3600)


def bucket_start(bucket: int, bucket_hours: int) -> datetime:
    return datetime.fromtimestamp(bucket * bucket_hours * 3600, tz=UTC)


def aggregate(
    reader: Reader,
    kind: SeriesKind | str,
    *,
    bucket_hours: int = 1,
    since: datetime | None = None,
    until: datetime | None = None,
    keys: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Sparse sums per (key, bucket): one row per bucket that has items.

    ``bucket`` counts buckets of ``bucket_hours`` since the epoch; ``since``/``until``
    bound the items' hours (until exclusive).
    """
    kind = SeriesKind(kind)
    where: list[ColumnElement[bool]] = [SeriesHour.kind == kind]
    if keys is not None:
        where.append(SeriesHour.key.in_([str(k) for k in keys]))
    if since is not None:
        where.append(SeriesHour.hour >= hour_of(since))
    if until is not None:
        where.append(SeriesHour.hour < hour_of(until))
    bucket = SeriesHour.hour if bucket_hours == 1 else SeriesHour.hour // bucket_hours
    query = (
        select(
            SeriesHour.key,
            bucket.label("bucket"),
            func.sum(SeriesHour.volume),
            func.sum(SeriesHour.sentiment_sum),
            func.sum(SeriesHour.sentiment_sq),
            func.sum(SeriesHour.negative),
        )
        .where(*where)
        .group_by(SeriesHour.key, bucket)
    )
    frame = pd.DataFrame(read_rows(reader, query), columns=COLUMNS)
    return frame.astype(
        {
            "key": str,
            "bucket": "int64",
            "volume": "int64",
            "sentiment_sum": "float64",
            "sentiment_sq": "float64",
            "negative": "int64",
        }
    )


def dense(sums: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """One series' sums on every bucket first..last (empty buckets are zero)."""
    frame = sums.set_index("bucket")[COLUMNS[2:]]
    return frame.reindex(range(first, last + 1), fill_value=0)


def trends(
    reader: Reader,
    kind: SeriesKind | str,
    *,
    bucket_hours: int = 1,
    since: datetime | None = None,
    until: datetime | None = None,
    keys: Sequence[str] | None = None,
    rolling: int | None = None,
    max_points: int | None = None,
) -> pd.DataFrame:
    """Readable trends: key, start, volume, mean_sentiment, negative_share, and with
    ``rolling`` = n buckets, their rolling means (empty buckets count as zero volume).
    ``max_points``: refuse (TooManyPoints) before densifying more rows than that."""
    sums = aggregate(reader, kind, bucket_hours=bucket_hours, since=since, until=until, keys=keys)
    if sums.empty:
        return pd.DataFrame(columns=["key", "start", "volume", "mean_sentiment", "negative_share"])
    parts = []
    first = hour_of(since) // bucket_hours if since is not None else int(sums["bucket"].min())
    last = (hour_of(until) - 1) // bucket_hours if until is not None else int(sums["bucket"].max())
    wanted = (last - first + 1) * int(sums["key"].nunique())
    if max_points is not None and wanted > max_points:
        raise TooManyPoints(
            f"{wanted} trend points asked ({sums['key'].nunique()} series × "
            f"{last - first + 1} buckets); at most {max_points} per request",
            hint="narrow since/until, use day buckets, or name the series with key=",
        )
    for key, group in sums.groupby("key", sort=True):
        frame = dense(group, first, last)
        out = pd.DataFrame(
            {
                "key": key,
                "start": [bucket_start(b, bucket_hours) for b in frame.index],
                "volume": frame["volume"].to_numpy(),
                "mean_sentiment": metric_values(frame, Metric.MEAN_SENTIMENT).to_numpy(),
                "negative_share": metric_values(frame, Metric.NEGATIVE_SHARE).to_numpy(),
            }
        )
        if rolling:
            out["volume_rolling"] = out["volume"].rolling(rolling, min_periods=1).mean()
            sent = frame["sentiment_sum"].rolling(rolling, min_periods=1).sum()
            vol = frame["volume"].rolling(rolling, min_periods=1).sum()
            out["sentiment_rolling"] = share(sent, vol).to_numpy()
        parts.append(out)
    return pd.concat(parts, ignore_index=True)


SUMMARY_SORTS = ("change", "volume", "negative")


def trend_summary(
    frame: pd.DataFrame, *, sort: str = "change", top: int | None = None
) -> pd.DataFrame:
    """One row per series of a ``trends`` frame: items, mean sentiment and negative share
    over the whole range (weighted by volume), the last bucket's volume, the usual volume
    per bucket before it, and ``change`` = last ÷ usual (the top movers come first).
    ``sort``: change, volume (items) or negative (negative share), largest first."""
    if sort not in SUMMARY_SORTS:
        raise ValueError(f"sort by one of {', '.join(SUMMARY_SORTS)}, not {sort!r}")
    rows = []
    for key, group in frame.groupby("key", sort=True):
        volume = group["volume"].to_numpy(dtype=float)
        total = volume.sum()
        if not total:
            continue
        # Means weighted by volume (an empty bucket's NaN weighs nothing).
        mean = np.nansum(group["mean_sentiment"].to_numpy(dtype=float) * volume) / total
        negative = np.nansum(group["negative_share"].to_numpy(dtype=float) * volume) / total
        usual = float(volume[:-1].mean()) if len(volume) > 1 else 0.0
        rows.append(
            {
                "key": key,
                "items": int(total),
                "mean_sentiment": float(mean),
                "negative_share": float(negative),
                "last": int(volume[-1]),
                "usual": usual,
                "change": _change(float(volume[-1]), usual),
            }
        )
    out = pd.DataFrame(
        rows,
        columns=["key", "items", "mean_sentiment", "negative_share", "last", "usual", "change"],
    )
    column = {"change": "change", "volume": "items", "negative": "negative_share"}[sort]
    out = out.sort_values([column, "items"], ascending=False, kind="stable").reset_index(drop=True)
    return out.head(top) if top else out


def _change(last: float, usual: float) -> float:
    """last ÷ usual; with nothing before, a series that just began is new (inf), one still
    silent is flat (0)."""
    if usual:
        return last / usual
    return float("inf") if last else 0.0


def series_keys(
    reader: Reader, kind: SeriesKind | str, *, limit: int = 500
) -> list[tuple[str, int]]:
    """Keys of one kind with their total volume, busiest first (for pickers)."""
    query = (
        select(SeriesHour.key, func.sum(SeriesHour.volume).label("n"))
        .where(SeriesHour.kind == SeriesKind(kind))
        .group_by(SeriesHour.key)
        .order_by(func.sum(SeriesHour.volume).desc())
        .limit(limit)
    )
    return [(str(k), int(n)) for k, n in read_rows(reader, query)]


@dataclass
class BucketItem:
    item_id: int
    title: str
    url: str | None
    image_sha256: str | None
    sentiment: float
    published: datetime | None


def items_in(
    session: Session,
    kind: SeriesKind | str,
    key: str,
    lo_hour: int,
    hi_hour: int,
    *,
    limit: int = 5,
    lowest_first: bool = False,
    newest_first: bool = False,
) -> list[BucketItem]:
    """Items of one series within [lo_hour, hi_hour), by sentiment (an index range scan),
    or the newest first; one of each text (a repost or a copy in another feed is folded)."""
    kind = SeriesKind(kind)
    table: type[Score] | type[Tag]
    if kind in (SeriesKind.ALL, SeriesKind.SOURCE):
        table = Score
        where = [Score.hour >= lo_hour, Score.hour < hi_hour]
        if kind is SeriesKind.SOURCE:
            where.append(Score.source_id == int(key))
    else:
        table = Tag
        where = [Tag.kind == kind, Tag.key == key, Tag.hour >= lo_hour, Tag.hour < hi_hour]
    order: list[Any]
    if newest_first:
        order = [table.hour.desc(), Item.id.desc()]
    else:
        order = [table.sentiment.asc() if lowest_first else table.sentiment.desc(), Item.id]
    rows = session.execute(
        select(Item, table.sentiment)
        .join(table, table.item_id == Item.id)
        .where(*where)
        .order_by(*order)
        .limit(limit * FOLD_READ)
    ).all()
    out: list[BucketItem] = []
    seen: set[str] = set()
    for item, sentiment in rows:
        same = content_key(item.title, item.text, item.image_sha256)  # as search folds them
        if same and same in seen:
            continue
        seen.add(same)
        title = (item.title or item.text or f"item {item.id}")[:160]
        out.append(
            BucketItem(
                item.id, title, item.url, item.image_sha256, float(sentiment), item.published_at
            )
        )
        if len(out) == limit:
            break
    return out


FOLD_READ = 4  # rows read per example wanted, so that folded copies still leave enough
