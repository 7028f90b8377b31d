"""Rule administration shared by the CLI and the dashboard: list, add, change, switch."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from monitor.alerts import RuleError, ensure_default_rules
from monitor.models import Rule, RuleKind, SeriesKind
from simmim.db import session_factory, session_scope

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
            raise RuleError(f"no rule {text!r}", hint="see `simmim rules list`")
        for name, value in changes.items():
            setattr(rule, name, value)
        session.flush()
        session.expunge(rule)
        return rule
