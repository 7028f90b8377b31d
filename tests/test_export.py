"""The CSV that search, trends and alerts share: columns, times, and no formulas."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from indexer.search import SearchResult
from monitor.export import SEARCH_COLUMNS, search_rows, to_csv
from monitor.items import HitScores


def test_search_rows_carry_the_finance_fields_and_are_safe_in_a_spreadsheet() -> None:
    results = [
        SearchResult(
            7,
            0.4123456,
            "fused",
            None,
            '=HYPERLINK("http://evil.example","click"), $ACME, "quoted"\nsecond line',
            "https://x.example/7",
            None,
            1,
            datetime(2026, 3, 1, 12, tzinfo=UTC),
            source_name="wire",
            also_in=["AP", "Reuters"],
        ),
        SearchResult(8, 0.3, "fused", "-5% for Bolt", None, None, None, 1, None, "wire"),
    ]
    scores = {7: HitScores("negative", -0.8123, 0.9, ["layoffs", "earnings"], ["ACME", "BOLT"])}
    text = to_csv(search_rows(results, scores), SEARCH_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    first, second = rows
    assert first["text"].startswith("'=HYPERLINK(") and first["text"].endswith("second line")
    assert (first["sentiment"], first["sentiment_score"]) == ("negative", "-0.812")
    assert first["companies"] == "ACME BOLT" and first["topics"] == "layoffs; earnings"
    assert first["published_at"] == "2026-03-01T12:00:00+00:00" and first["score"] == "0.4123"
    assert first["also_in"] == "AP; Reuters" and first["rank"] == "1"
    assert second["title"] == "'-5% for Bolt"  # a leading minus would be a formula
    assert second["sentiment"] == "" and second["published_at"] == "" and second["rank"] == "2"
    assert text.splitlines()[0] == ",".join(SEARCH_COLUMNS)
