"""Trends + detection at scale: 1,000,000 scored items, 50 series, 90 days.

    python bench/monitor.py [--n 1000000] [--postgres URL]

Seeds Score + Tag rows directly (the scoring step is benchmarked by bench/sentiment.py),
then times one full trend computation (hourly, every series, all 90 days) plus one
detection cycle over the default rules, on SQLite and on PostgreSQL. Progress on stderr;
the last stdout line is JSON: n, sqlite_s, postgres_s (and their parts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# This file is named like the `monitor` package it measures: keep its folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sqlalchemy import Engine, func, insert, select, text  # noqa: E402

from monitor import rollup  # noqa: E402
from monitor.alerts import detect  # noqa: E402
from monitor.models import Score, SeriesKind, Tag  # noqa: E402
from monitor.rules import ensure_default_rules  # noqa: E402
from monitor.trends import aggregate  # noqa: E402
from simmim.db import make_engine, session_factory, session_scope  # noqa: E402
from simmim.migrations import upgrade  # noqa: E402
from simmim.models import Item, ItemStatus, Source, SourceKind  # noqa: E402
from simmim.settings import load_settings  # noqa: E402

DAYS = 90
SERIES = 50
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def seed(engine: Engine, n: int) -> None:
    rng = np.random.default_rng(0)
    start_hour = int((NOW - timedelta(days=DAYS)).timestamp() // 3600)
    hours = np.sort(rng.integers(start_hour, start_hour + DAYS * 24, n))
    series = rng.integers(0, SERIES, n)
    sentiment = np.round(rng.normal(0.05, 0.4, n).clip(-1, 1), 3)
    negative = (sentiment < -0.3).astype(int)
    sources = rng.integers(1, 11, n)
    with engine.begin() as conn:
        conn.execute(
            insert(Source),
            [
                {"id": i, "name": f"s{i}", "kind": SourceKind.RSS, "location": f"http://x/{i}"}
                for i in range(1, 11)
            ],
        )
    chunk = 50_000
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        ids = range(lo + 1, hi + 1)
        with engine.begin() as conn:
            conn.execute(
                insert(Item),
                [
                    {
                        "id": i,
                        "source_id": int(sources[i - 1]),
                        "title": f"item {i}",
                        "status": ItemStatus.INDEXED,
                        "indexed_spaces": 2,
                        "crawled_at": NOW,
                        "published_at": NOW,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(Score),
                [
                    {
                        "item_id": i,
                        "source_id": int(sources[i - 1]),
                        "at": NOW,
                        "hour": int(hours[i - 1]),
                        "label": "negative" if negative[i - 1] else "neutral",
                        "sentiment": float(sentiment[i - 1]),
                        "confidence": 0.9,
                        "negative": int(negative[i - 1]),
                        "sentiment_scorer": "bench@1",
                        "topic_scorer": "bench@1",
                        "topics": [],
                        "tickers": [],
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(Tag),
                [
                    {
                        "item_id": i,
                        "kind": SeriesKind.TOPIC if series[i - 1] < 25 else SeriesKind.TICKER,
                        "key": f"k{series[i - 1]}",
                        "weight": 1.0,
                        "hour": int(hours[i - 1]),
                        "sentiment": float(sentiment[i - 1]),
                        "negative": int(negative[i - 1]),
                    }
                    for i in ids
                ],
            )
        print(f"  seeded {hi:,}/{n:,}", file=sys.stderr)
    with session_scope(session_factory(engine)) as session:
        rollup.rebuild(session)  # what scoring keeps up to date incrementally


def item_level(engine: Engine, kind: SeriesKind) -> int:
    """The baseline: the same hourly sums (into pandas) straight from the item-level rows."""
    if kind in (SeriesKind.ALL, SeriesKind.SOURCE):
        key = Score.source_id if kind is SeriesKind.SOURCE else Score.hour
        query = select(
            key, Score.hour, func.count(), func.sum(Score.sentiment), func.sum(Score.negative)
        ).group_by(key, Score.hour)
    else:
        query = (
            select(Tag.key, Tag.hour, func.count(), func.sum(Tag.sentiment), func.sum(Tag.negative))
            .where(Tag.kind == kind)
            .group_by(Tag.key, Tag.hour)
        )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    columns = ["key", "bucket", "volume", "sentiment_sum", "negative"]
    return len(pd.DataFrame(rows, columns=columns))  # as aggregate() does with its rows


def measure(engine: Engine, data_dir: Path) -> dict[str, float]:
    settings = load_settings(data_dir=data_dir)
    ensure_default_rules(engine)
    start = time.perf_counter()
    rows = sum(
        len(aggregate(engine, kind, bucket_hours=1))
        for kind in (SeriesKind.TOPIC, SeriesKind.TICKER, SeriesKind.SOURCE, SeriesKind.ALL)
    )
    trends_s = time.perf_counter() - start
    start = time.perf_counter()
    for kind in (SeriesKind.TOPIC, SeriesKind.TICKER, SeriesKind.SOURCE, SeriesKind.ALL):
        item_level(engine, kind)
    baseline_s = time.perf_counter() - start
    print(f"  item-level GROUP BY (baseline): {baseline_s:.2f}s", file=sys.stderr)
    start = time.perf_counter()
    found = detect(settings, engine, clock=lambda: NOW)
    detect_s = time.perf_counter() - start
    print(
        f"  trends {trends_s:.2f}s ({rows:,} bucket rows), detect {detect_s:.2f}s "
        f"({found.series} series, {found.buckets} buckets, {len(found.fired)} fired)",
        file=sys.stderr,
    )
    return {
        "baseline_item_level_s": round(baseline_s, 3),
        "trends_speedup_vs_item_level": round(baseline_s / trends_s, 2),
        "trends_s": round(trends_s, 3),
        "detect_s": round(detect_s, 3),
        "total_s": round(trends_s + detect_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "SIMMIM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    result: dict[str, object] = {"n": args.n, "series": SERIES, "days": DAYS}
    with tempfile.TemporaryDirectory() as tmp:
        print("sqlite:", file=sys.stderr)
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        seed(engine, args.n)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        parts = measure(engine, Path(tmp))
        result["sqlite_s"], result["sqlite"] = parts["total_s"], parts

        print("postgres:", file=sys.stderr)
        schema = f"bench_monitor_{os.getpid()}"
        admin = make_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            from sqlalchemy.engine import make_url

            url = make_url(args.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
            pg = make_engine(url.render_as_string(hide_password=False))
            upgrade(pg)
            seed(pg, args.n)
            with pg.begin() as conn:
                conn.execute(text("ANALYZE"))
            parts = measure(pg, Path(tmp))
            result["postgres_s"], result["postgres"] = parts["total_s"], parts
            pg.dispose()
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
