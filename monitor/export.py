"""CSV of search results, trends and alerts: one set of columns for the CLI, the dashboard
and the API, so a sheet made from any of them reads the same.

Cells that a spreadsheet would run as a formula (text starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return: a crawled post can say ``=HYPERLINK(...)``) get a
leading apostrophe, as OWASP advises for CSV export; numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.alerts import alert_state

if TYPE_CHECKING:
    import pandas as pd

    from indexer.search import SearchResult
    from monitor.items import HitScores
    from monitor.models import Alert

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

SEARCH_COLUMNS = (
    "rank",
    "score",
    "item_id",
    "title",
    "text",
    "sentiment",
    "sentiment_score",
    "companies",
    "topics",
    "source",
    "published_at",
    "url",
    "also_in",
)
TREND_COLUMNS = ("series", "bucket_start", "items", "mean_sentiment", "negative_share")
SUMMARY_COLUMNS = (
    "series",
    "items",
    "mean_sentiment",
    "negative_share",
    "last_bucket",
    "usual_per_bucket",
    "change",
)
ALERT_COLUMNS = (
    "id",
    "status",
    "series",
    "direction",
    "fired_at",
    "resolved_at",
    "acknowledged_at",
    "value",
    "baseline",
    "volume",
    "summary",
)


def search_rows(
    results: Sequence[SearchResult], scores: Mapping[int, HitScores]
) -> list[dict[str, Any]]:
    """One row per result, in rank order, with the item's finance scores when it has them."""
    rows = []
    for rank, r in enumerate(results, start=1):
        scored = scores.get(r.item_id)
        rows.append(
            {
                "rank": rank,
                "score": round(r.score, 4),
                "item_id": r.item_id,
                "title": r.title,
                "text": r.text,
                "sentiment": scored.sentiment_label if scored else None,
                "sentiment_score": round(scored.sentiment, 3) if scored else None,
                "companies": " ".join(scored.tickers) if scored else None,
                "topics": "; ".join(scored.topics) if scored else None,
                "source": r.source_name,
                "published_at": r.published_at,
                "url": r.url,
                "also_in": "; ".join(r.also_in),
            }
        )
    return rows


def trend_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The buckets of a ``trends`` frame that hold items (an empty bucket has no mean)."""
    return [
        {
            "series": row.key,
            "bucket_start": row.start,
            "items": int(row.volume),
            "mean_sentiment": round(float(row.mean_sentiment), 4),
            "negative_share": round(float(row.negative_share), 4),
        }
        for row in frame[frame["volume"] > 0].itertuples()
    ]


def summary_rows(summary: pd.DataFrame) -> list[dict[str, Any]]:
    """A ``trend_summary`` frame; a series with no usual volume has change ``new``."""
    return [
        {
            "series": row.key,
            "items": int(row.items),
            "mean_sentiment": round(float(row.mean_sentiment), 4),
            "negative_share": round(float(row.negative_share), 4),
            "last_bucket": int(row.last),
            "usual_per_bucket": round(float(row.usual), 3),
            "change": "new" if math.isinf(row.change) else round(float(row.change), 3),
        }
        for row in summary.itertuples()
    ]


def alert_rows(alerts: Iterable[Alert]) -> list[dict[str, Any]]:
    return [
        {
            "id": a.id,
            "status": alert_state(a),
            "series": f"{a.series_kind.value}:{a.series_key}",
            "direction": a.direction,
            "fired_at": a.fired_at,
            "resolved_at": a.resolved_at,
            "acknowledged_at": a.acknowledged_at,
            "value": round(a.value, 4),
            "baseline": round(a.baseline, 4),
            "volume": a.volume,
            "summary": a.summary,
        }
        for a in alerts
    ]


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """RFC 4180 text with a header row; times in ISO 8601 UTC, missing values empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    return value
