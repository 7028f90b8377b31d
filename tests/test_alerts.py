"""Alert lifecycle through the database with an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from monitor.alerts import acknowledge, detect
from monitor.models import Alert, AlertStatus, Notification, Rule, RuleKind, SeriesKind
from simmim.db import session_factory, session_scope
from simmim.settings import load_settings
from tests.monitor_helpers import T0, daily, seed


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def add_rule(engine: Engine, **kw: object) -> int:
    spec: dict[str, object] = {
        "name": "acme volume",
        "kind": RuleKind.VOLUME_SPIKE,
        "series_kind": SeriesKind.TICKER,
        "series_key": None,
        "bucket_hours": 24,
        "window": 14,
        "min_history": 5,
        "min_volume": 5,
        "z": 3.0,
        "p_value": 0.001,
        "confirm": 1,
        "cooldown_s": 3 * 86400,
    }
    spec.update(kw)
    with session_scope(session_factory(engine)) as session:
        rule = Rule(**spec)
        session.add(rule)
        session.flush()
        return rule.id


def alerts(engine: Engine) -> list[Alert]:
    with session_scope(session_factory(engine)) as session:
        rows = list(session.scalars(select(Alert).order_by(Alert.id)))
        session.expunge_all()
        return rows


def notifications(engine: Engine) -> list[tuple[int, str]]:
    with session_scope(session_factory(engine)) as session:
        return [
            (n.alert_id, n.event)
            for n in session.scalars(select(Notification).order_by(Notification.id))
        ]


@pytest.fixture
def settings(tmp_path):  # type: ignore[no-untyped-def]
    return load_settings(data_dir=tmp_path)


def test_fire_once_resolve_and_cooldown(settings, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from simmim.db import make_engine
    from simmim.migrations import upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    add_rule(engine, cooldown_s=5 * 86400)
    counts = [6, 5, 7, 6, 5, 6, 7, 5, 6, 6, 5, 7, 6, 5, 40, 6, 5, 6, 5, 45, 6]
    seed(engine, daily(counts, ticker="ACME") + daily([5] * 21, ticker="BOLT"))
    clock = Clock(T0 + timedelta(days=14, hours=1))  # day 14 (the spike) is still open
    assert detect(settings, engine, clock=clock).fired == []

    clock.now = T0 + timedelta(days=15, hours=1)  # day 14 complete
    first = detect(settings, engine, clock=clock)
    assert len(first.fired) == 1
    [alert] = alerts(engine)
    assert (alert.series_key, alert.status, alert.volume) == ("ACME", AlertStatus.FIRING, 40)
    assert "Volume spike in ticker ACME" in alert.summary
    assert "× the usual" in alert.summary  # against the usual in words, not only z and p
    assert notifications(engine) == [(alert.id, "firing")]

    # The same cycle again (a restart): nothing new.
    assert detect(settings, engine, clock=clock).fired == []
    clock.now = T0 + timedelta(days=16, hours=1)  # day 15 normal → resolved
    resolved = detect(settings, engine, clock=clock)
    assert resolved.resolved == [alert.id]
    assert alerts(engine)[0].status is AlertStatus.RESOLVED
    assert notifications(engine)[-1] == (alert.id, "resolved")

    clock.now = T0 + timedelta(
        days=20, hours=1
    )  # day 19: second spike, 4 days after resolving: cooldown 5
    again = detect(settings, engine, clock=clock)
    assert again.fired == [] and again.suppressed == 1
    assert len(alerts(engine)) == 1


def test_fires_again_after_cooldown(settings, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from simmim.db import make_engine
    from simmim.migrations import upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    add_rule(engine, cooldown_s=86400)
    counts = [6, 5, 7, 6, 5, 6, 7, 5, 6, 6, 5, 7, 6, 5, 40, 6, 5, 6, 5, 45, 6]
    seed(engine, daily(counts))
    clock = Clock(T0 + timedelta(days=15, hours=1))
    assert len(detect(settings, engine, clock=clock).fired) == 1
    clock.now = T0 + timedelta(days=16, hours=1)
    detect(settings, engine, clock=clock)
    clock.now = T0 + timedelta(days=20, hours=1)
    assert len(detect(settings, engine, clock=clock).fired) == 1
    assert [a.first_bucket for a in alerts(engine)][1] - alerts(engine)[0].first_bucket == 5


def test_confirmation_needs_consecutive_buckets(settings, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from simmim.db import make_engine
    from simmim.migrations import upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    add_rule(engine, confirm=2)
    counts = [6, 5, 7, 6, 5, 6, 7, 5, 6, 6, 5, 7, 6, 5, 40, 6, 5, 6, 5, 45, 44, 6]
    seed(engine, daily(counts))
    clock = Clock(T0 + timedelta(days=15, hours=1))
    assert detect(settings, engine, clock=clock).fired == []  # one bucket: pending only
    clock.now = T0 + timedelta(days=16, hours=1)
    assert detect(settings, engine, clock=clock).fired == []  # back to normal
    clock.now = T0 + timedelta(days=21, hours=1)  # days 19 and 20 both high
    fired = detect(settings, engine, clock=clock).fired
    assert len(fired) == 1
    assert alerts(engine)[0].first_bucket == alerts(engine)[0].last_bucket - 1


def test_old_spikes_are_not_alerted_and_ack_stops_repeats(settings, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from simmim.db import make_engine
    from simmim.migrations import upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    add_rule(engine, repeat_s=3600)
    counts = [6, 5, 7, 6, 5, 6, 7, 5, 6, 6, 5, 7, 6, 5, 40, 6, 5, 6, 5, 6, 6, 5, 6, 6, 5, 50, 50]
    seed(engine, daily(counts))
    clock = Clock(T0 + timedelta(days=26, hours=1))  # first look: day 14's spike is old news
    found = detect(settings, engine, clock=clock)
    assert len(found.fired) == 1
    [alert] = alerts(engine)
    assert alert.first_bucket == alerts(engine)[0].last_bucket  # the day-25 spike
    with session_scope(session_factory(engine)) as session:
        session.get(Alert, alert.id).last_notified_at = clock.now  # as if emailed
        session.execute(
            Notification.__table__.update().values(sent_at=clock.now, message_id="<x@y>")
        )
    clock.now += timedelta(hours=2)
    detect(settings, engine, clock=clock)
    assert notifications(engine)[-1] == (alert.id, "repeat")
    acked = acknowledge(engine, alert.id, clock=clock)
    assert acked.acknowledged_at == clock.now
    with session_scope(session_factory(engine)) as session:
        session.execute(Notification.__table__.update().values(sent_at=clock.now))
        session.get(Alert, alert.id).last_notified_at = clock.now
    clock.now += timedelta(hours=2)
    detect(settings, engine, clock=clock)
    with session_scope(session_factory(engine)) as session:
        assert session.scalar(select(func.count(Notification.id))) == 2  # no repeat after ack


def test_negative_share_rule_names_the_company(settings, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from simmim.db import make_engine
    from simmim.migrations import upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    add_rule(engine, name="neg", kind=RuleKind.NEGATIVE_SHARE, z=2.5, p_value=0.01)
    counts = [10] * 16
    negatives = [1, 0, 1, 2, 1, 0, 1, 1, 0, 2, 1, 1, 0, 1, 9, 1]
    seed(engine, daily(counts, negatives=negatives, sentiment=0.2))
    found = detect(settings, engine, clock=Clock(T0 + timedelta(days=15, hours=1)))
    assert len(found.fired) == 1
    summary = alerts(engine)[0].summary
    assert summary.startswith("Negative news surge for ticker ACME: 9 of 10 items negative (90%)")
    assert "usually" in summary and summary.endswith(")")  # the statistics last, in brackets
