"""Rules → detector → alert lifecycle, with its state kept in the database.

Each cycle evaluates, per enabled rule and series, every completed bucket after the last
one it evaluated (so a restart resumes instead of repeating). Triggers become alerts only
after ``confirm`` consecutive buckets (pending → firing), resolve on the first normal
bucket, and are not re-opened for the same dedup key (rule, series, direction) within the
rule's cooldown. The alert row and its outbox entry are written in the same transaction;
email goes out later (:mod:`monitor.notify`), so a failed send is retried, not lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import pandas as pd
from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.orm import Session

from monitor.detector import DetectorParams, evaluate
from monitor.models import (
    Alert,
    AlertStatus,
    Notification,
    Rule,
    SeriesHour,
    SeriesKind,
    SeriesPhase,
    SeriesState,
)
from monitor.rules import describe, direction_of
from monitor.trends import aggregate, bucket_start, dense, hour_of
from simmim.clock import Clock, utcnow
from simmim.db import session_factory, session_scope
from simmim.errors import NotFound
from simmim.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class DetectSummary:
    rules: int = 0
    series: int = 0
    buckets: int = 0
    fired: list[int] = field(default_factory=list)  # alert ids
    resolved: list[int] = field(default_factory=list)
    suppressed: int = 0  # cooldown
    silent: int = 0  # spikes older than catch_up_buckets: state only, no alert


class _Cycle:
    """One detection pass; caches aggregations shared by rules with the same shape."""

    def __init__(self, settings: Settings, engine: Engine, session: Session, now: datetime) -> None:
        self.settings, self.engine, self.session, self.now = settings, engine, session, now
        self._sums: dict[tuple[str, int, int], pd.DataFrame] = {}
        self._first: dict[str, dict[str, int]] = {}
        self._labels: dict[str, str] | None = None

    def sums(self, kind: SeriesKind, bucket_hours: int, since_bucket: int) -> pd.DataFrame:
        key = (kind.value, bucket_hours, since_bucket)
        if key not in self._sums:
            since = bucket_start(since_bucket, bucket_hours)
            self._sums[key] = aggregate(self.session, kind, bucket_hours=bucket_hours, since=since)
        return self._sums[key]

    def first_hour(self, kind: SeriesKind) -> dict[str, int]:
        """The hour each series first had an item: history starts there, not before."""
        if kind.value not in self._first:
            rows = self.session.execute(
                select(SeriesHour.key, func.min(SeriesHour.hour))
                .where(SeriesHour.kind == kind)
                .group_by(SeriesHour.key)
            ).all()
            self._first[kind.value] = {str(k): int(h) for k, h in rows if h is not None}
        return self._first[kind.value]

    def label(self, kind: SeriesKind, key: str) -> str:
        if kind is SeriesKind.SOURCE or kind is SeriesKind.QUERY:
            if self._labels is None:
                from monitor.models import SavedQuery
                from simmim.models import Source

                self._labels = {
                    f"source:{i}": n
                    for i, n in self.session.execute(select(Source.id, Source.name))
                }
                self._labels.update(
                    {
                        f"query:{i}": n
                        for i, n in self.session.execute(select(SavedQuery.id, SavedQuery.name))
                    }
                )
            return repr(self._labels.get(f"{kind.value}:{key}", key))
        return key if kind is SeriesKind.TICKER else repr(key)


def detect(settings: Settings, engine: Engine, *, clock: Clock = utcnow) -> DetectSummary:
    now = clock()
    summary = DetectSummary()
    factory = session_factory(engine)
    with session_scope(factory) as session:
        rules = list(session.scalars(select(Rule).where(Rule.enabled).order_by(Rule.id)))
        cycle = _Cycle(settings, engine, session, now)
        for rule in rules:
            summary.rules += 1
            _run_rule(cycle, rule, summary)
        _repeat_notifications(session, now)
    return summary


def _run_rule(cycle: _Cycle, rule: Rule, summary: DetectSummary) -> None:
    session, now = cycle.session, cycle.now
    bh = rule.bucket_hours
    last_complete = hour_of(now) // bh - 1
    emit_from = last_complete - cycle.settings.monitor.catch_up_buckets + 1
    start_new = emit_from - rule.confirm
    floor = start_new - rule.window  # never replay more than this after a long stop
    states = {
        s.series_key: s
        for s in session.scalars(select(SeriesState).where(SeriesState.rule_id == rule.id))
    }
    starts = {key: max(s.last_bucket + 1, floor) for key, s in states.items()}
    data_from = min([*starts.values(), start_new]) - rule.window
    sums = cycle.sums(rule.series_kind, bh, data_from)
    if rule.series_key is not None:
        sums = sums[sums["key"] == rule.series_key]
    first_hours = cycle.first_hour(rule.series_kind)
    keys = set(sums["key"]) | {k for k, s in states.items() if s.state != SeriesPhase.NORMAL}
    if rule.series_key is not None:
        keys &= {rule.series_key}
    params = DetectorParams(
        kind=rule.kind,
        window=rule.window,
        min_history=rule.min_history,
        min_volume=rule.min_volume,
        z=rule.z,
        p_value=rule.p_value,
    )
    grouped = dict(tuple(sums.groupby("key"))) if len(sums) else {}
    for key in sorted(keys):
        begin = starts.get(key, start_new)
        if begin > last_complete:
            continue
        first = first_hours.get(key)
        frame_from = max(data_from, first // bh if first is not None else begin)
        if frame_from > last_complete:
            continue
        group = grouped.get(
            key,
            pd.DataFrame(columns=["bucket", "volume", "sentiment_sum", "sentiment_sq", "negative"]),
        )
        evaluated = evaluate(dense(group, frame_from, last_complete), params)
        state = states.get(key)
        if state is None:
            state = SeriesState(
                rule_id=rule.id,
                series_key=key,
                state=SeriesPhase.NORMAL,
                streak=0,
                last_bucket=begin - 1,
            )
            session.add(state)
        summary.series += 1
        for bucket in range(max(begin, frame_from), last_complete + 1):
            row = evaluated.loc[bucket]
            _step(cycle, rule, key, state, bucket, row, emit_from, summary)
            summary.buckets += 1
        state.last_bucket = last_complete


def _step(
    cycle: _Cycle,
    rule: Rule,
    key: str,
    state: SeriesState,
    bucket: int,
    row: pd.Series,
    emit_from: int,
    summary: DetectSummary,
) -> None:
    session, now = cycle.session, cycle.now
    alert = session.get(Alert, state.alert_id) if state.alert_id else None
    if state.state == SeriesPhase.FIRING:
        if bool(row["triggered"]):
            if alert is not None:
                alert.last_bucket = bucket
                more = row["z"] > alert.z
                if more:
                    alert.value, alert.z, alert.p_value = (
                        float(row["value"]),
                        float(row["z"]),
                        float(row["p"]),
                    )
                    alert.volume = int(row["volume"])
            return
        if alert is not None:
            alert.status = AlertStatus.RESOLVED
            alert.resolved_at = now
            session.add(Notification(alert_id=alert.id, event="resolved", created_at=now))
            summary.resolved.append(alert.id)
        state.state, state.streak, state.alert_id = SeriesPhase.NORMAL, 0, None
        return
    if not bool(row["triggered"]):
        state.state, state.streak = SeriesPhase.NORMAL, 0
        return
    state.streak += 1
    state.state = SeriesPhase.PENDING
    if state.streak < rule.confirm:
        return
    state.state, state.streak = SeriesPhase.FIRING, 0
    if bucket < emit_from:
        summary.silent += 1
        return
    direction = direction_of(rule.kind)
    dedup = f"{rule.id}:{rule.series_kind.value}:{key}:{direction}"
    last = session.scalars(
        select(Alert).where(Alert.dedup_key == dedup).order_by(Alert.fired_at.desc()).limit(1)
    ).first()
    if last is not None and (
        last.status is AlertStatus.FIRING
        or (
            last.resolved_at is not None
            and now - last.resolved_at < timedelta(seconds=rule.cooldown_s)
        )
    ):
        summary.suppressed += 1
        return
    first_bucket = bucket - rule.confirm + 1
    new = Alert(
        rule_id=rule.id,
        dedup_key=dedup,
        series_kind=rule.series_kind,
        series_key=key,
        direction=direction,
        status=AlertStatus.FIRING,
        bucket_hours=rule.bucket_hours,
        first_bucket=first_bucket,
        last_bucket=bucket,
        value=float(row["value"]),
        baseline=float(row["baseline"]),
        z=float(row["z"]),
        p_value=float(row["p"]),
        volume=int(row["volume"]),
        summary=describe(
            rule,
            rule.series_kind,
            cycle.label(rule.series_kind, key),
            row,
            bucket_start(bucket, rule.bucket_hours),
        ),
        fired_at=now,
    )
    session.add(new)
    session.flush()
    session.add(Notification(alert_id=new.id, event="firing", created_at=now))
    state.alert_id = new.id
    summary.fired.append(new.id)


def _repeat_notifications(session: Session, now: datetime) -> None:
    rows = session.execute(
        select(Alert, Rule.repeat_s)
        .join(Rule, Rule.id == Alert.rule_id)
        .where(
            Alert.status == AlertStatus.FIRING,
            Alert.acknowledged_at.is_(None),
            Rule.repeat_s.is_not(None),
        )
    ).all()
    for alert, repeat_s in rows:
        if alert.last_notified_at and now - alert.last_notified_at >= timedelta(
            seconds=repeat_s or 0
        ):
            pending = session.scalar(
                select(func.count(Notification.id)).where(
                    Notification.alert_id == alert.id, Notification.sent_at.is_(None)
                )
            )
            if not pending:
                session.add(Notification(alert_id=alert.id, event="repeat", created_at=now))


def get_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}", hint="see `simmim alerts list`")
    return alert


def acknowledge(engine: Engine, alert_id: int, *, clock: Clock = utcnow) -> Alert:
    with session_scope(session_factory(engine)) as session:
        alert = get_alert(session, alert_id)
        if alert.acknowledged_at is None:
            alert.acknowledged_at = clock()
        session.flush()
        session.expunge(alert)
        return alert


def list_alerts(
    engine: Engine,
    *,
    status: AlertStatus | None = None,
    limit: int = 200,
    before: tuple[datetime, int] | None = None,
    series_kind: SeriesKind | None = None,
    series_key: str | None = None,
    resolved_since: datetime | None = None,
) -> list[Alert]:
    """Newest first; detached rows for display. ``before`` (fired_at, id) of the last row
    already shown continues a listing page by page. ``resolved_since`` with the firing
    status: also the alerts resolved since then, so one that fired and resolved in the
    same cycle (a one-bucket spike) is not missing from "what is firing"."""
    query = select(Alert).order_by(Alert.fired_at.desc(), Alert.id.desc()).limit(limit)
    if status is AlertStatus.FIRING and resolved_since is not None:
        query = query.where(or_(Alert.status == status, Alert.resolved_at >= resolved_since))
    elif status is not None:
        query = query.where(Alert.status == status)
    if series_kind is not None:
        query = query.where(Alert.series_kind == series_kind)
    if series_key is not None:
        query = query.where(Alert.series_key == series_key)
    if before is not None:
        fired, last_id = before
        query = query.where(
            or_(Alert.fired_at < fired, and_(Alert.fired_at == fired, Alert.id < last_id))
        )
    with session_scope(session_factory(engine)) as session:
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


AlertState = Literal["firing", "resolved", "fired and resolved"]


def alert_state(alert: Alert) -> AlertState:
    """ "firing", "resolved", or "fired and resolved" for one that did both in one cycle
    (the same detection run stamps both times): the words the CLI, dashboard and digest use."""
    if alert.status is AlertStatus.FIRING:
        return "firing"
    if alert.resolved_at is not None and alert.resolved_at <= alert.fired_at:
        return "fired and resolved"
    return "resolved"
