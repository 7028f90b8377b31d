"""Rules: what each rule kind watches (one table), the default set, and rule administration.

``RULE_KINDS`` is the one place that says, per kind, which metric of a series it reads,
which way is abnormal and how an alert of that kind is described; the detector, the alert
chart and the alert text all read it. The alert lifecycle lives in :mod:`monitor.alerts`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from monitor.models import Rule, RuleKind, SeriesKind
from monitor.trends import Metric
from simmim.db import session_factory, session_scope
from simmim.errors import NotFound, SimmimError


class Direction(enum.StrEnum):
    UP = "up"  # abnormal when the metric is high
    DOWN = "down"  # abnormal when it is low


@dataclass(frozen=True)
class RuleKindSpec:
    metric: Metric
    direction: Direction
    label: str  # the chart's y axis
    describe: Callable[[str, pd.Series, str, str], str]  # (series, row, when, stats) -> line


def _times_usual(value: float, baseline: float) -> str:
    if baseline <= 0:
        return "where there are usually none"
    ratio = value / baseline
    return (
        f"{ratio:.0f}× the usual {baseline:.0f}"
        if ratio >= 10
        else f"{ratio:.1f}× the usual {baseline:.1f}"
    )


def _volume_spike(series: str, row: pd.Series, when: str, stats: str) -> str:
    value, baseline = float(row["value"]), float(row["baseline"])
    return f"Volume spike in {series}: {int(value)} items {when}, {_times_usual(value, baseline)} ({stats})"


def _negative_share(series: str, row: pd.Series, when: str, stats: str) -> str:
    volume = int(row["volume"])
    return (
        f"Negative news surge for {series}: {round(float(row['value']) * volume)} of {volume} "
        f"items negative ({row['value']:.0%}) {when}, usually {row['baseline']:.0%} ({stats})"
    )


def _sentiment_drop(series: str, row: pd.Series, when: str, stats: str) -> str:
    return (
        f"Sentiment drop for {series}: mean {row['value']:+.2f} over {int(row['volume'])} items "
        f"{when}, usually {row['baseline']:+.2f} ({stats})"
    )


def _source_silent(series: str, row: pd.Series, when: str, stats: str) -> str:
    return f"Source silent: {series} had no items {when}, usually {row['baseline']:.0f} ({stats})"


RULE_KINDS: dict[RuleKind, RuleKindSpec] = {
    RuleKind.VOLUME_SPIKE: RuleKindSpec(Metric.VOLUME, Direction.UP, "items", _volume_spike),
    RuleKind.NEGATIVE_SHARE: RuleKindSpec(
        Metric.NEGATIVE_SHARE, Direction.UP, "negative share", _negative_share
    ),
    RuleKind.SENTIMENT_DROP: RuleKindSpec(
        Metric.MEAN_SENTIMENT, Direction.DOWN, "mean sentiment", _sentiment_drop
    ),
    RuleKind.SOURCE_SILENT: RuleKindSpec(Metric.VOLUME, Direction.DOWN, "items", _source_silent),
}


def direction_of(kind: RuleKind) -> Direction:
    return RULE_KINDS[kind].direction


def describe(rule: Rule, kind: SeriesKind, label: str, row: pd.Series, start: datetime) -> str:
    """One line for the alert list and the email subject's first words: what happened in
    words and against the usual, the test's statistics last."""
    stats = f"z {row['z']:.1f}, p {row['p']:.1g}"
    return RULE_KINDS[rule.kind].describe(
        f"{kind.value} {label}", row, bucket_phrase(start, rule.bucket_hours), stats
    )


def bucket_phrase(start: datetime, bucket_hours: int) -> str:
    """ "on 2026-03-01" for a day, "in the hour from 2026-03-01 14:00 UTC" otherwise."""
    if bucket_hours == 24 and start.hour == 0:
        return f"on {start:%Y-%m-%d}"
    span = "hour" if bucket_hours == 1 else f"{bucket_hours} hours"
    return f"in the {span} from {start:%Y-%m-%d %H:%M} UTC"


class RuleError(SimmimError):
    """A rule cannot be created or changed as asked."""


DEFAULT_RULES: tuple[dict[str, object], ...] = (
    {"name": "topic volume spike", "kind": RuleKind.VOLUME_SPIKE, "series_kind": "topic"},
    {"name": "ticker volume spike", "kind": RuleKind.VOLUME_SPIKE, "series_kind": "ticker"},
    {
        "name": "ticker negative share",
        "kind": RuleKind.NEGATIVE_SHARE,
        "series_kind": "ticker",
        "z": 2.5,
        "p_value": 0.01,
    },
    {
        "name": "topic sentiment drop",
        "kind": RuleKind.SENTIMENT_DROP,
        "series_kind": "topic",
        "z": 3.0,
        "p_value": 0.005,
    },
    {
        "name": "source silent",
        "kind": RuleKind.SOURCE_SILENT,
        "series_kind": "source",
        "min_volume": 3,
        "z": 2.0,
        "p_value": 0.01,
    },
    {
        "name": "saved query volume spike",
        "kind": RuleKind.VOLUME_SPIKE,
        "series_kind": "query",
        "min_volume": 3,
    },
)


def ensure_default_rules(engine: Engine) -> int:
    """Create the default rule set once, on a database that has no rules at all."""
    factory = session_factory(engine)
    with session_scope(factory) as session:
        if session.scalar(select(func.count(Rule.id))):
            return 0
        for spec in DEFAULT_RULES:
            session.add(Rule(**spec))  # the rest: Rule's column defaults
        return len(DEFAULT_RULES)


EDITABLE = (
    "bucket_hours",
    "window",
    "min_history",
    "min_volume",
    "z",
    "p_value",
    "confirm",
    "cooldown_s",
    "repeat_s",
    "enabled",
)


def parse_bucket(text: str) -> int:
    """'hour' → 1, 'day' → 24, '6h' → 6."""
    hours = {"hour": 1, "day": 24}.get(text)
    if hours is None and text.endswith("h") and text[:-1].isdigit():
        hours = int(text[:-1])
    if not hours or hours <= 0:
        raise RuleError(f"bucket {text!r} is not hour, day or Nh", hint="e.g. --bucket 6h")
    return hours


def list_rules(engine: Engine) -> list[Rule]:
    """Every rule, the default set created first on a database without any."""
    ensure_default_rules(engine)
    with session_scope(session_factory(engine)) as session:
        rules = list(session.scalars(select(Rule).order_by(Rule.id)))
        session.expunge_all()
        return rules


def add_rule(
    engine: Engine, *, name: str, kind: str, series: str, bucket: str = "day", **params: Any
) -> Rule:
    """``series`` is a kind, optionally with one key: "topic", "ticker:ACME"."""
    try:
        rule_kind = RuleKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in RuleKind)
        raise RuleError(f"unknown rule kind {kind!r}", hint=f"choose one of {choices}") from None
    series_kind_text, _, key = series.partition(":")
    try:
        series_kind = SeriesKind(series_kind_text)
    except ValueError:
        choices = ", ".join(k.value for k in SeriesKind)
        raise RuleError(
            f"unknown series {series_kind_text!r}", hint=f"choose one of {choices}"
        ) from None
    if rule_kind is RuleKind.SOURCE_SILENT and series_kind is not SeriesKind.SOURCE:
        raise RuleError("source_silent watches sources", hint="use --series source or source:ID")
    unknown = set(params) - set(EDITABLE)
    if unknown:
        raise RuleError(f"unknown rule setting(s) {', '.join(sorted(unknown))}")
    ensure_default_rules(engine)
    with session_scope(session_factory(engine)) as session:
        if session.scalar(select(Rule.id).where(Rule.name == name)) is not None:
            raise RuleError(f"a rule named {name!r} exists", hint="choose another name")
        rule = Rule(
            name=name,
            kind=rule_kind,
            series_kind=series_kind,
            series_key=key or None,
            bucket_hours=parse_bucket(bucket),
            **params,  # what is not given: Rule's column defaults
        )
        session.add(rule)
        session.flush()
        session.expunge(rule)
        return rule


def update_rule(engine: Engine, ref: str | int, **changes: Any) -> Rule:
    """Change settings of a rule by id or name (enabled, thresholds, window, ...)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise RuleError(f"unknown rule setting(s) {', '.join(sorted(unknown))}")
    text = str(ref)
    with session_scope(session_factory(engine)) as session:
        clause = Rule.id == int(text) if text.isdigit() else Rule.name == text
        rule = session.scalars(select(Rule).where(clause)).first()
        if rule is None:
            raise NotFound(f"no rule {text!r}", hint="see `simmim rules list`")
        for name, value in changes.items():
            setattr(rule, name, value)
        session.flush()
        session.expunge(rule)
        return rule
