"""The scheduler: jobs registered from settings, due times from the database, no overlap,
clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from monitor.cycle import Runtime
from monitor.models import JobRun
from monitor.scheduler import build_scheduler, run_forever
from monitor.steps import CYCLE
from simmim.db import make_engine, session_factory, session_scope
from simmim.migrations import upgrade
from simmim.settings import MonitorSettings, load_settings

# the steps clocked by a monitor.<name>_every_s setting
STEPS = [s for s in CYCLE if f"{s}_every_s" in MonitorSettings.model_fields]


class Recording(Runtime):
    """The real runtime with steps replaced by slow recorders."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.active = 0
        self.max_active = 0
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def _step(self, name: str) -> dict[str, Any]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(0.15)
        with self._lock:
            self.active -= 1
            self.calls.append(name)
        return {"ok": name}

    def crawl(self) -> dict[str, Any]:
        return self._step("crawl")

    def index(self) -> dict[str, Any]:
        return self._step("index")

    def score(self) -> dict[str, Any]:
        return self._step("score")

    def detect(self) -> dict[str, Any]:
        raise RuntimeError("boom")  # a failing step is recorded, the scheduler goes on

    def fusion(self) -> dict[str, Any]:
        return self._step("fusion")


def _runtime(tmp_path, every: int = 1, self_train: bool = False) -> Recording:  # type: ignore[no-untyped-def]
    settings = load_settings(
        data_dir=tmp_path,
        monitor={f"{s}_every_s": every for s in STEPS},
        fusion={"self_train": self_train, "every_s": 3600},
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return Recording(settings, engine)


def test_jobs_registered_with_ids_and_limits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    runtime = _runtime(tmp_path, every=300)
    scheduler = build_scheduler(runtime)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {f"monitor-{s}" for s in STEPS}  # self-training switched off
    for job in jobs.values():
        assert job.max_instances == 1 and job.coalesce is True
        assert job.misfire_grace_time == runtime.settings.monitor.misfire_grace_s
        assert job.trigger.interval == timedelta(seconds=300)
    training = build_scheduler(_runtime(tmp_path, every=300, self_train=True)).get_jobs()
    fusion = {job.id: job for job in training}["monitor-fusion"]
    assert fusion.trigger.interval == timedelta(seconds=3600) and fusion.max_instances == 1


def test_due_times_come_from_the_last_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    runtime = _runtime(tmp_path, every=300)
    now = datetime.now(UTC)
    with session_scope(session_factory(runtime.engine)) as session:
        session.add(
            JobRun(
                job="crawl",
                started_at=now - timedelta(seconds=60),
                finished_at=now - timedelta(seconds=50),
                ok=True,
            )
        )
        session.add(
            JobRun(
                job="index",
                started_at=now - timedelta(hours=2),
                finished_at=now - timedelta(hours=2),
                ok=True,
            )
        )
    jobs = {job.id: job for job in build_scheduler(runtime).get_jobs()}
    crawl_due = jobs["monitor-crawl"].next_run_time
    assert timedelta(seconds=240) < crawl_due - now <= timedelta(seconds=251)  # waits its interval
    assert jobs["monitor-index"].next_run_time - now < timedelta(seconds=5)  # overdue: now


def test_runs_without_overlap_and_stops_on_sigterm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    runtime = _runtime(tmp_path, every=1)
    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(2.5, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    run_forever(runtime)
    assert time.monotonic() - started < 6
    assert runtime.stop.is_set()
    assert runtime.max_active == 1  # one worker: no step overlaps another or itself
    assert runtime.active == 0  # the running step finished before exit
    assert {"crawl", "index", "score"} <= set(runtime.calls)
    with session_scope(session_factory(runtime.engine)) as session:
        runs = list(session.scalars(select(JobRun)))
        assert runs and all(r.finished_at is not None for r in runs)
        failed = [r for r in runs if r.job == "detect"]
        assert failed and not failed[0].ok and "boom" in (failed[0].error or "")
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored


def test_the_step_table_drives_once_the_scheduler_and_followers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One table: `monitor once` runs its cycle in order, a scheduled detect is followed by
    notify (its own JobRun, even when detect failed), self-training is clocked only when on."""
    from monitor.steps import followers, scheduled, step

    assert CYCLE == ("crawl", "index", "score", "detect", "notify")
    assert [f.name for f in followers("detect")] == ["notify"]
    runtime = _runtime(tmp_path, every=300)
    assert list(scheduled(runtime.settings)) == ["crawl", "index", "score", "detect"]
    assert "fusion" in scheduled(_runtime(tmp_path, every=300, self_train=True).settings)
    runs = runtime.run_clocked("detect")
    assert [r.job for r in runs] == ["detect", "notify"]
    assert not runs[0].ok and runs[1].ok and "emails" in runs[1].summary
    assert [r.job for r in runtime.run_once()] == list(CYCLE)
    with pytest.raises(ValueError, match="no monitor step 'dtect'"):
        step("dtect")
