"""`simmim monitor run`: the cycle's steps on APScheduler 3.x, in the foreground.

One worker thread runs every job, so steps never overlap each other or themselves (they
share index files); each job also has ``max_instances=1`` and ``coalesce`` so a slow run
is followed by one catch-up run, not a pile. First run times come from the JobRun table:
after a restart a step that ran recently waits for its interval, one that is overdue
runs at once. SIGINT/SIGTERM set a stop flag that long steps check between batches, then
the scheduler waits for the running job and exits.
"""

from __future__ import annotations

import logging
import signal
from datetime import datetime, timedelta
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from monitor.cycle import Runtime, last_finished
from monitor.steps import scheduled
from simmim.locks import RunInProgress

log = logging.getLogger(__name__)


def first_run_time(runtime: Runtime, step: str, every_s: int, now: datetime) -> datetime:
    last = last_finished(runtime.engine, step)
    if last is None:
        return now
    return max(now, last + timedelta(seconds=every_s))


def _run_or_skip(runtime: Runtime, step: str) -> None:
    """A tick runs its step and the steps that follow it (``monitor.steps``); one whose step
    another process is running (a `monitor once`, a worker) is skipped: the next tick
    catches up."""
    try:
        runtime.run_clocked(step)
    except RunInProgress as exc:
        log.info("monitor step %s skipped: %s", step, exc.message)


def build_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        timezone="UTC",
    )
    now = runtime.clock()
    # Staggered by the table's order: a cold start runs crawl → index → score → detect
    # (+ notify) (→ fusion).
    for offset, (step, every) in enumerate(scheduled(runtime.settings).items()):
        scheduler.add_job(
            _run_or_skip,
            "interval",
            args=[runtime, step],
            id=f"monitor-{step}",
            name=step,
            seconds=every,
            next_run_time=first_run_time(runtime, step, every, now)
            + timedelta(milliseconds=offset),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=runtime.settings.monitor.misfire_grace_s,
            replace_existing=True,
        )
    return scheduler


def run_forever(runtime: Runtime, *, install_signals: bool = True) -> None:
    """Block until SIGINT/SIGTERM (or ``runtime.stop`` is set), then stop cleanly."""
    scheduler = build_scheduler(runtime)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.warning("received %s: stopping after the running step", signal.Signals(signum).name)
        runtime.stop.set()

    previous = {}
    if install_signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    scheduler.start()
    try:
        while not runtime.stop.wait(0.5):
            pass
    finally:
        scheduler.shutdown(wait=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
