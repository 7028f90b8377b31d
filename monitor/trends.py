"""Trends: per series and time bucket, volume, mean sentiment and negative share.

All aggregation is one SQL GROUP BY on integer hour buckets (see :mod:`monitor.models`);
pandas only sees the aggregated rows, for filling empty buckets and rolling statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import ColumnElement, Engine, String, cast, func, literal, select

from monitor.models import Score, SeriesKind, Tag

COLUMNS = ["key", "bucket", "volume", "sentiment_sum", "sentiment_sq", "negative"]


def hour_of(when: datetime) -> int:
    """Whole hours since the epoch, UTC: the bucket clock of every series."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() // 3600)


def bucket_start(bucket: int, bucket_hours: int) -> datetime:
    return datetime.fromtimestamp(bucket * bucket_hours * 3600, tz=UTC)


def aggregate(
    engine: Engine,
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
    key: ColumnElement[str]
    where: list[ColumnElement[bool]]
    if kind in (SeriesKind.ALL, SeriesKind.SOURCE):
        table_hour, sentiment, negative = Score.hour, Score.sentiment, Score.negative
        key = literal("all") if kind is SeriesKind.ALL else cast(Score.source_id, String)
        where = []
        if keys is not None and kind is SeriesKind.SOURCE:
            where.append(Score.source_id.in_([int(k) for k in keys]))
    else:
        table_hour, sentiment, negative = Tag.hour, Tag.sentiment, Tag.negative
        key = Tag.key  # type: ignore[assignment]
        where = [Tag.kind == kind]
        if keys is not None:
            where.append(Tag.key.in_(list(keys)))
    if since is not None:
        where.append(table_hour >= hour_of(since))
    if until is not None:
        where.append(table_hour < hour_of(until))
    bucket = table_hour if bucket_hours == 1 else table_hour // bucket_hours
    query = (
        select(
            key.label("key"),
            bucket.label("bucket"),
            func.count().label("volume"),
            func.sum(sentiment).label("sentiment_sum"),
            func.sum(sentiment * sentiment).label("sentiment_sq"),
            func.sum(negative).label("negative"),
        )
        .where(*where)
        .group_by(key, bucket)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(rows, columns=COLUMNS)
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
    engine: Engine,
    kind: SeriesKind | str,
    *,
    bucket_hours: int = 1,
    since: datetime | None = None,
    until: datetime | None = None,
    keys: Sequence[str] | None = None,
    rolling: int | None = None,
) -> pd.DataFrame:
    """Readable trends: key, start, volume, mean_sentiment, negative_share, and with
    ``rolling`` = n buckets, their rolling means (empty buckets count as zero volume)."""
    sums = aggregate(engine, kind, bucket_hours=bucket_hours, since=since, until=until, keys=keys)
    if sums.empty:
        return pd.DataFrame(columns=["key", "start", "volume", "mean_sentiment", "negative_share"])
    parts = []
    first = hour_of(since) // bucket_hours if since is not None else int(sums["bucket"].min())
    last = (hour_of(until) - 1) // bucket_hours if until is not None else int(sums["bucket"].max())
    for key, group in sums.groupby("key", sort=True):
        frame = dense(group, first, last)
        out = pd.DataFrame(
            {
                "key": key,
                "start": [bucket_start(b, bucket_hours) for b in frame.index],
                "volume": frame["volume"].to_numpy(),
                "mean_sentiment": (frame["sentiment_sum"] / frame["volume"]).to_numpy(),
                "negative_share": (frame["negative"] / frame["volume"]).to_numpy(),
            }
        )
        if rolling:
            out["volume_rolling"] = out["volume"].rolling(rolling, min_periods=1).mean()
            sent = frame["sentiment_sum"].rolling(rolling, min_periods=1).sum()
            vol = frame["volume"].rolling(rolling, min_periods=1).sum()
            out["sentiment_rolling"] = (sent / vol.where(vol > 0)).to_numpy()
        parts.append(out)
    return pd.concat(parts, ignore_index=True)
