"""Trends in SQL on SQLite and PostgreSQL agree with pandas on the same rows."""

from __future__ import annotations

import random
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine

from monitor.trends import aggregate, hour_of, trends
from tests.monitor_helpers import T0, Row, seed


def _rows(n: int = 600) -> list[Row]:
    rng = random.Random(7)
    return [
        Row(
            T0 + timedelta(minutes=rng.randrange(0, 10 * 24 * 60)),
            sentiment=round(rng.uniform(-1, 1), 3),
            tickers=tuple(rng.sample(["ACME", "BOLT", "CRUX"], rng.randrange(0, 3))),
            topics=tuple(rng.sample(["earnings", "layoffs"], rng.randrange(0, 2))),
            source=rng.choice(["wire", "blog"]),
        )
        for _ in range(n)
    ]


def _reference(rows: list[Row], bucket_hours: int, kind: str) -> pd.DataFrame:
    records = []
    for r in rows:
        keys = {"ticker": r.tickers, "topic": r.topics, "all": ("all",)}[kind]
        for key in keys:
            records.append(
                {
                    "key": key,
                    "bucket": hour_of(r.at) // bucket_hours,
                    "sentiment": r.sentiment,
                    "negative": int(r.sentiment < -0.3),
                }
            )
    frame = pd.DataFrame(records)
    out = frame.groupby(["key", "bucket"]).agg(
        volume=("sentiment", "size"),
        sentiment_sum=("sentiment", "sum"),
        negative=("negative", "sum"),
    )
    return out.reset_index().sort_values(["key", "bucket"]).reset_index(drop=True)


@pytest.mark.parametrize("bucket_hours", [1, 24])
@pytest.mark.parametrize("kind", ["ticker", "topic", "all"])
def test_sql_aggregation_matches_pandas(engine: Engine, kind: str, bucket_hours: int) -> None:
    rows = _rows()
    seed(engine, rows)
    got = aggregate(engine, kind, bucket_hours=bucket_hours).sort_values(["key", "bucket"])
    got = got.reset_index(drop=True)
    want = _reference(rows, bucket_hours, kind)
    assert list(got["key"]) == list(want["key"])
    assert list(got["bucket"]) == list(want["bucket"])
    assert list(got["volume"]) == list(want["volume"])
    assert list(got["negative"]) == list(want["negative"])
    assert got["sentiment_sum"].to_numpy() == pytest.approx(want["sentiment_sum"].to_numpy())


def test_trends_fill_empty_buckets_and_respect_the_range(engine: Engine) -> None:
    rows = [Row(T0 + timedelta(days=d, hours=3), sentiment=-0.9, tickers=("ACME",)) for d in (0, 2)]
    seed(engine, rows)
    frame = trends(
        engine, "ticker", bucket_hours=24, since=T0, until=T0 + timedelta(days=4), rolling=2
    )
    assert list(frame["volume"]) == [1, 0, 1, 0]
    assert frame["negative_share"].iloc[0] == 1.0 and pd.isna(frame["negative_share"].iloc[1])
    assert list(frame["volume_rolling"]) == [1.0, 0.5, 0.5, 0.5]
    only_first = trends(engine, "ticker", bucket_hours=24, since=T0, until=T0 + timedelta(days=1))
    assert list(only_first["volume"]) == [1]


def test_source_series_keys_are_source_ids(engine: Engine) -> None:
    seed(engine, [Row(T0, source="wire"), Row(T0, source="wire"), Row(T0, source="blog")])
    frame = aggregate(engine, "source", bucket_hours=24)
    assert sorted(frame["volume"]) == [1, 2] and all(k.isdigit() for k in frame["key"])


def test_incremental_rollup_equals_a_rebuild(engine: Engine) -> None:
    from sqlalchemy import select

    from monitor import rollup
    from monitor.models import SeriesHour
    from simmim.db import session_factory, session_scope

    seed(engine, _rows(200))
    seed(engine, _rows(150))  # increments existing hours too

    def snapshot() -> list[tuple[str, str, int, int, float, int]]:
        with session_scope(session_factory(engine)) as session:
            rows = session.scalars(select(SeriesHour)).all()
            return sorted(
                (r.kind.value, r.key, r.hour, r.volume, round(r.sentiment_sum, 6), r.negative)
                for r in rows
            )

    incremental = snapshot()
    with session_scope(session_factory(engine)) as session:
        rollup.rebuild(session)
    assert snapshot() == incremental and len(incremental) > 100


def test_removing_a_source_removes_its_items_from_trends(engine: Engine, cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seed(
        engine,
        [Row(T0, source="wire", tickers=("ACME",)), Row(T0, source="blog", tickers=("ACME",))],
    )
    monkeypatch.setenv("SIMMIM_DATABASE__URL", engine.url.render_as_string(hide_password=False))
    cli("source", "remove", "blog")
    assert list(aggregate(engine, "ticker", bucket_hours=24)["volume"]) == [1]
    assert list(aggregate(engine, "all", bucket_hours=24)["volume"]) == [1]


def test_the_summary_ranks_series_by_their_last_bucket_against_the_usual() -> None:
    """Issue 35: `simmim trends ticker` printed hundreds of alphabetical rows."""
    from monitor.trends import trend_summary

    days = pd.date_range("2026-03-01", periods=4, freq="D", tz="UTC")
    frame = pd.DataFrame(
        {
            "key": ["AAA"] * 4 + ["BBB"] * 4 + ["CCC"] * 4,
            "start": list(days) * 3,
            "volume": [2, 2, 2, 2, 1, 1, 1, 9, 0, 0, 0, 0],
            "mean_sentiment": [0.5] * 4 + [0.0, 0.0, 0.0, -1.0] + [float("nan")] * 4,
            "negative_share": [0.0] * 4 + [0.0, 0.0, 0.0, 1.0] + [float("nan")] * 4,
        }
    )
    summary = trend_summary(frame)
    assert list(summary["key"]) == ["BBB", "AAA"]  # CCC has no items
    bbb = summary.iloc[0]
    assert (bbb["items"], bbb["last"], bbb["usual"], bbb["change"]) == (12, 9, 1.0, 9.0)
    assert bbb["mean_sentiment"] == pytest.approx(-0.75) and bbb["negative_share"] == 0.75
    assert list(trend_summary(frame, sort="volume", top=1)["key"]) == ["BBB"]
    assert list(trend_summary(frame, sort="negative")["key"]) == ["BBB", "AAA"]
    with pytest.raises(ValueError, match="sort by one of"):
        trend_summary(frame, sort="alphabet")
