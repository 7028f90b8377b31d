"""Monitor tables: scores and the series they feed, rules, detector state, alerts, outbox.

Time is bucketed once, at scoring: ``hour`` is whole hours since the Unix epoch (UTC), so
an hourly or daily trend is an integer GROUP BY that every backend runs the same way and
an index can serve without touching timestamps.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from simmim.clock import utcnow
from simmim.db import Base, UTCDateTime
from simmim.models import str_enum


class SeriesKind(enum.StrEnum):
    ALL = "all"  # every item
    SOURCE = "source"  # key: source id
    TOPIC = "topic"  # key: topic name
    TICKER = "ticker"  # key: ticker symbol
    QUERY = "query"  # key: saved query id


class RuleKind(enum.StrEnum):
    VOLUME_SPIKE = "volume_spike"
    NEGATIVE_SHARE = "negative_share"
    SENTIMENT_DROP = "sentiment_drop"
    SOURCE_SILENT = "source_silent"


class AlertStatus(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class SeriesPhase(enum.StrEnum):
    """Where one (rule, series) stands: triggers confirm over buckets before an alert fires."""

    NORMAL = "normal"
    PENDING = "pending"  # triggered, fewer than ``confirm`` buckets in a row so far
    FIRING = "firing"  # an alert is open for it


class Score(Base):
    """One row per scored item: its sentiment and the versions that produced its tags."""

    __tablename__ = "monitor_score"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("indexer_item.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # published, else crawled
    hour: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(8))
    sentiment: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    negative: Mapped[int] = mapped_column(Integer)  # 1 when label is negative: sums to counts
    sentiment_scorer: Mapped[str] = mapped_column(String(80))  # name@version
    topic_scorer: Mapped[str] = mapped_column(String(80))
    # The company table's version: a new table (import, add) means re-tagging tickers.
    ticker_scorer: Mapped[str] = mapped_column(String(80), default="", server_default="")
    topics: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[name, score], ...]
    tickers: Mapped[list[str]] = mapped_column(JSON, default=list)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # A bucket's items (overall, per source) and the rollup rebuild read these.
        Index("ix_monitor_score_hour_source", "hour", "source_id", "sentiment", "negative"),
        Index("ix_monitor_score_source_hour", "source_id", "hour"),
    )


class Tag(Base):
    """An item's membership in a topic / ticker / saved-query series, with its hour and
    sentiment copied in: a bucket's items and the rollup rebuild need no join."""

    __tablename__ = "monitor_tag"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("indexer_item.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[SeriesKind] = mapped_column(str_enum(SeriesKind, 8))
    key: Mapped[str] = mapped_column(String(200))
    weight: Mapped[float] = mapped_column(Float)
    hour: Mapped[int] = mapped_column(Integer)
    sentiment: Mapped[float] = mapped_column(Float)
    negative: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_monitor_tag_series", "kind", "key", "hour", "sentiment", "negative"),
    )


class Rule(Base):
    __tablename__ = "monitor_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[RuleKind] = mapped_column(str_enum(RuleKind, 24))
    series_kind: Mapped[SeriesKind] = mapped_column(str_enum(SeriesKind, 8))
    series_key: Mapped[str | None] = mapped_column(String(200))  # None: every series of the kind
    # The defaults are the one place a rule's shape comes from when not given: daily
    # buckets suit most corpora (tens to thousands of items a day); add hourly rules with
    # `simmim rules add --bucket hour` for faster reaction on busy feeds.
    bucket_hours: Mapped[int] = mapped_column(Integer, default=24)
    window: Mapped[int] = mapped_column(Integer, default=14)  # buckets of baseline
    min_history: Mapped[int] = mapped_column(Integer, default=5)
    min_volume: Mapped[int] = mapped_column(Integer, default=5)
    z: Mapped[float] = mapped_column(Float, default=3.0)
    p_value: Mapped[float] = mapped_column(Float, default=0.001)
    confirm: Mapped[int] = mapped_column(Integer, default=1)  # consecutive buckets to fire
    cooldown_s: Mapped[int] = mapped_column(Integer, default=24 * 3600)
    repeat_s: Mapped[int | None] = mapped_column(Integer)  # re-notify while firing
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SeriesState(Base):
    """The detector's memory per (rule, series): survives restarts, so nothing re-fires."""

    __tablename__ = "monitor_series_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("monitor_rule.id", ondelete="CASCADE"))
    series_key: Mapped[str] = mapped_column(String(200))
    # A SeriesPhase value (VARCHAR without CHECK, as first migrated).
    state: Mapped[str] = mapped_column(String(8), default=SeriesPhase.NORMAL.value)
    streak: Mapped[int] = mapped_column(Integer, default=0)
    last_bucket: Mapped[int] = mapped_column(Integer)  # last bucket index evaluated
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("monitor_alert.id", ondelete="SET NULL")
    )

    __table_args__ = (UniqueConstraint("rule_id", "series_key"),)


class Alert(Base):
    __tablename__ = "monitor_alert"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("monitor_rule.id", ondelete="CASCADE"))
    dedup_key: Mapped[str] = mapped_column(String(300), index=True)  # rule:kind:key:direction
    series_kind: Mapped[SeriesKind] = mapped_column(str_enum(SeriesKind, 8))
    series_key: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(4))  # up | down
    status: Mapped[AlertStatus] = mapped_column(str_enum(AlertStatus, 10), index=True)
    bucket_hours: Mapped[int] = mapped_column(Integer)
    first_bucket: Mapped[int] = mapped_column(Integer)  # bucket index where it began
    last_bucket: Mapped[int] = mapped_column(Integer)  # latest bucket still abnormal
    value: Mapped[float] = mapped_column(Float)  # what was seen (peak)
    baseline: Mapped[float] = mapped_column(Float)
    z: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    volume: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Notification(Base):
    """The outbox: written with the alert change, sent later, marked with its Message-ID."""

    __tablename__ = "monitor_notification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(
        ForeignKey("monitor_alert.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(10))  # firing | resolved | repeat
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    message_id: Mapped[str | None] = mapped_column(String(255))  # set before the send
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Sends whose outcome is unknown (the message went, no reply came): at most two.
    uncertain: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SavedQuery(Base):
    """A search kept as a monitor: each new item close enough to it joins its series."""

    __tablename__ = "monitor_saved_query"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    text: Mapped[str | None] = mapped_column(Text)
    image_sha256: Mapped[str | None] = mapped_column(String(64))  # in the image store
    space: Mapped[str] = mapped_column(String(8), default="fused")
    threshold: Mapped[float] = mapped_column(Float)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, for `fingerprint`
    fingerprint: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobRun(Base):
    """One run of a scheduled job: due times after a restart come from here."""

    __tablename__ = "monitor_job_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ok: Mapped[bool | None] = mapped_column(Boolean)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    runner: Mapped[str | None] = mapped_column(String(120))  # "host pid N" (a worker, a CLI)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the periodic time it ran for

    __table_args__ = (Index("ix_monitor_job_run_job_started", "job", "started_at"),)


class SeriesHour(Base):
    """Hourly sums per series, kept in step with Score/Tag at scoring time.

    Trends and detection read this rollup (one row per series and hour) instead of the
    item-level rows, so their cost follows the number of buckets, not of items.
    """

    __tablename__ = "monitor_series_hour"

    kind: Mapped[SeriesKind] = mapped_column(str_enum(SeriesKind, 8), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    volume: Mapped[int] = mapped_column(Integer, default=0)
    sentiment_sum: Mapped[float] = mapped_column(Float, default=0.0)
    sentiment_sq: Mapped[float] = mapped_column(Float, default=0.0)
    negative: Mapped[int] = mapped_column(Integer, default=0)
