"""The hourly rollup behind trends: increments at scoring, a full rebuild on demand.

Scoring adds each batch's sums with an upsert (``ON CONFLICT DO UPDATE``, on SQLite and
PostgreSQL alike) in the same transaction as the Score/Tag rows, so the rollup never
disagrees with them. Deletions (a removed source, a re-score) call :func:`rebuild`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import String, cast, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from indexer.source_admin import find_source
from monitor.models import Score, SeriesHour, SeriesKind, Tag
from simmim.models import Source

Sums = dict[tuple[str, str, int], list[float]]  # (kind, key, hour) → [n, s, s², neg]


def collect(scores: Iterable[Mapping[str, Any]], tags: Iterable[Mapping[str, Any]]) -> Sums:
    sums: Sums = {}

    def add(kind: str, key: str, row: Mapping[str, Any]) -> None:
        entry = sums.setdefault((kind, key, int(row["hour"])), [0, 0.0, 0.0, 0])
        entry[0] += 1
        entry[1] += row["sentiment"]
        entry[2] += row["sentiment"] ** 2
        entry[3] += row["negative"]

    for row in scores:
        add(SeriesKind.ALL.value, "all", row)
        add(SeriesKind.SOURCE.value, str(row["source_id"]), row)
    for row in tags:
        add(SeriesKind(row["kind"]).value, str(row["key"]), row)
    return sums


def add(session: Session, sums: Sums) -> None:
    """Add ``sums`` to the rollup (insert new hours, increment existing ones)."""
    if not sums:
        return
    rows: list[dict[str, Any]] = [
        {
            "kind": kind,
            "key": key,
            "hour": hour,
            "volume": int(n),
            "sentiment_sum": s,
            "sentiment_sq": sq,
            "negative": int(neg),
        }
        for (kind, key, hour), (n, s, sq, neg) in sums.items()
    ]
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as upsert
        else:
            from sqlalchemy.dialects.postgresql import insert as upsert  # type: ignore[assignment]
        statement = upsert(SeriesHour)
        table = SeriesHour.__table__.c
        statement = statement.on_conflict_do_update(
            index_elements=["kind", "key", "hour"],
            set_={
                name: table[name] + statement.excluded[name]
                for name in ("volume", "sentiment_sum", "sentiment_sq", "negative")
            },
        )
        for start in range(0, len(rows), 5000):
            session.execute(statement, rows[start : start + 5000])
        return
    for row in rows:  # other backends: read-modify-write
        existing = session.get(SeriesHour, (SeriesKind(row["kind"]), row["key"], row["hour"]))
        if existing is None:
            session.add(SeriesHour(**row))
        else:
            existing.volume += row["volume"]
            existing.sentiment_sum += row["sentiment_sum"]
            existing.sentiment_sq += row["sentiment_sq"]
            existing.negative += row["negative"]


def rebuild(session: Session) -> None:
    """Recompute the whole rollup from Score and Tag (after deletions)."""
    session.execute(delete(SeriesHour))
    columns = ["kind", "key", "hour", "volume", "sentiment_sum", "sentiment_sq", "negative"]

    def sums(sentiment: Any, negative: Any) -> list[Any]:
        return [
            func.count(),
            func.sum(sentiment),
            func.sum(sentiment * sentiment),
            func.sum(negative),
        ]

    kind_all = literal(SeriesKind.ALL.value, String(8))
    session.execute(
        insert(SeriesHour).from_select(
            columns,
            select(
                kind_all,
                literal("all", String(200)),
                Score.hour,
                *sums(Score.sentiment, Score.negative),
            ).group_by(Score.hour),
        )
    )
    source_key = cast(Score.source_id, String)
    session.execute(
        insert(SeriesHour).from_select(
            columns,
            select(
                literal(SeriesKind.SOURCE.value, String(8)),
                source_key,
                Score.hour,
                *sums(Score.sentiment, Score.negative),
            ).group_by(Score.source_id, Score.hour),
        )
    )
    session.execute(
        insert(SeriesHour).from_select(
            columns,
            select(Tag.kind, Tag.key, Tag.hour, *sums(Tag.sentiment, Tag.negative)).group_by(
                Tag.kind, Tag.key, Tag.hour
            ),
        )
    )


def remove_source(session: Session, ref: str) -> Source:
    """Delete a source with every item crawled from it, and the trends those items fed.

    Lives here rather than in the source admin because the hourly sums must lose the
    items too, and only the monitor knows them.
    """
    source = find_source(session, ref)
    session.delete(source)
    session.flush()
    rebuild(session)
    return source
