"""What the monitor is doing, for `simmim monitor status`, the dashboard and the API.

Both modes record every step's runs as JobRun rows; with workers on PostgreSQL the task
queue (Procrastinate's tables) adds tasks by queue and state, live workers and failed
tasks with the error of their last try.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, inspect, select, text

from monitor.models import JobRun
from simmim.db import session_factory, session_scope

# The periodic steps (and the work they fan out to), in the order data flows through them.
STEP_JOBS = ("crawl", "crawl-source", "index", "encode", "index-write", "score", "detect", "notify")
TASK_STATES = ("todo", "doing", "failed", "succeeded", "cancelled", "aborted")


@dataclass
class StepStatus:
    job: str
    started_at: datetime
    finished_at: datetime | None
    ok: bool | None
    runner: str | None
    error: str | None
    summary: dict[str, Any]

    def outcome(self) -> str:
        """The run in words, for `simmim monitor status` and the System page."""
        return self.error or summary_words(self.summary)


# How a step's summary keys read; keys not listed read as their name with spaces.
_KEY_WORDS = {
    "new": "new items",
    "failed_sources": "failed sources",
    "notifications_sent": "notifications sent",
    "notifications_pending": "notifications waiting",
    "emails_uncertain": "emails of unknown fate",
    "email_failed": "emails failed",
    "email_error": "email error",
    "more": "more staged",
}


def summary_words(summary: dict[str, Any]) -> str:
    """``{"sources": 3, "new": 12, "failed_sources": ["wire"], "error": None}`` reads as
    "3 sources, 12 new items, failed sources: wire": no raw None, list or dict on a page."""
    parts = []
    for key, value in summary.items():
        name = _KEY_WORDS.get(key, key.replace("_", " "))
        if value is None or value == [] or value == {} or value is False:
            continue
        if key in ("fired", "resolved") and isinstance(value, list):  # alert ids
            ids = ", ".join(f"#{v}" for v in value[:5]) + (" …" if len(value) > 5 else "")
            parts.append(f"{len(value)} alert(s) {key} ({ids})")
        elif value is True:
            parts.append(name)
        elif isinstance(value, int | float):
            parts.append(f"{value:g} {name}")
        elif isinstance(value, list | tuple):
            shown = ", ".join(str(v) for v in value[:5])
            more = f" and {len(value) - 5} more" if len(value) > 5 else ""
            parts.append(f"{name}: {shown}{more}")
        elif isinstance(value, dict):
            parts.append(f"{name}: {summary_words(value) or 'none'}")
        else:
            parts.append(f"{name}: {value}")
    return ", ".join(parts)


@dataclass
class FailedTask:
    id: int
    task: str
    queue: str
    args: dict[str, Any]
    attempts: int
    error: str | None  # from the JobRun of its last try


@dataclass
class MonitorStatus:
    queue: bool  # True: workers on PostgreSQL (the task queue's tables exist)
    steps: list[StepStatus] = field(default_factory=list)  # the last run of each step
    tasks: dict[str, dict[str, int]] = field(default_factory=dict)  # queue → state → count
    workers: list[datetime] = field(default_factory=list)  # last heartbeat of each worker row
    # Per queue, tasks marked running whose worker has gone silent (dead, until a live
    # worker hands them back); they are not running, whatever their state says.
    stalled: dict[str, int] = field(default_factory=dict)
    failed: list[FailedTask] = field(default_factory=list)
    stalled_after_s: float = 30.0  # a worker silent this long is dead

    def live_workers(self, now: datetime) -> int:
        return sum((now - beat).total_seconds() < self.stalled_after_s for beat in self.workers)

    def workers_line(self, now: datetime) -> str:
        """ "2 alive, 1 silent for over 60 s (dead)", for the CLI and the System page."""
        live = self.live_workers(now)
        silent = len(self.workers) - live
        dead = f", {silent} silent for over {self.stalled_after_s:g} s (dead)" if silent else ""
        return f"{live} worker(s) alive{dead}"

    def running(self, queue: str) -> int:
        """Tasks of this queue that run: "doing" ones of live workers only."""
        return self.tasks.get(queue, {}).get("doing", 0) - self.stalled.get(queue, 0)


def monitor_status(
    engine: Engine, *, failed_limit: int = 20, stalled_after_s: float = 30.0
) -> MonitorStatus:
    has_queue = engine.dialect.name == "postgresql" and inspect(engine).has_table(
        "procrastinate_jobs"
    )
    status = MonitorStatus(
        queue=has_queue, steps=last_runs(engine), stalled_after_s=stalled_after_s
    )
    if not has_queue:
        return status
    with engine.connect() as connection:
        for queue, state, count in connection.execute(
            text(
                "SELECT queue_name, status::text, count(*) FROM procrastinate_jobs"
                " GROUP BY queue_name, status"
            )
        ):
            status.tasks.setdefault(queue, dict.fromkeys(TASK_STATES, 0))[state] = count
        status.workers = list(
            connection.scalars(text("SELECT last_heartbeat FROM procrastinate_workers ORDER BY id"))
        )
        status.stalled = dict(
            connection.execute(  # type: ignore[arg-type]
                text(
                    "SELECT j.queue_name, count(*) FROM procrastinate_jobs j"
                    " LEFT JOIN procrastinate_workers w ON w.id = j.worker_id"
                    " WHERE j.status = 'doing' AND (w.id IS NULL OR w.last_heartbeat"
                    " < now() - make_interval(secs => :stalled)) GROUP BY j.queue_name"
                ),
                {"stalled": stalled_after_s},
            ).all()
        )
        failed = connection.execute(
            text(
                "SELECT id, task_name, queue_name, args, attempts FROM procrastinate_jobs"
                " WHERE status = 'failed' ORDER BY id DESC LIMIT :limit"
            ),
            {"limit": failed_limit},
        ).all()
    errors = _task_errors(engine, {row.id for row in failed})
    status.failed = [
        FailedTask(
            row.id, row.task_name, row.queue_name, row.args, row.attempts, errors.get(row.id)
        )
        for row in failed
    ]
    return status


def last_runs(engine: Engine) -> list[StepStatus]:
    """The latest run of each step that has run, in data-flow order."""
    steps = []
    with session_scope(session_factory(engine)) as session:
        for job in STEP_JOBS:
            run = session.scalar(
                select(JobRun).where(JobRun.job == job).order_by(JobRun.started_at.desc()).limit(1)
            )
            if run is not None:
                steps.append(
                    StepStatus(
                        run.job,
                        run.started_at,
                        run.finished_at,
                        run.ok,
                        run.runner,
                        run.error,
                        dict(run.summary or {}),
                    )
                )
    return steps


def _task_errors(engine: Engine, task_ids: set[int]) -> dict[int, str | None]:
    """Each task's last recorded error (a JobRun's summary names its task)."""
    if not task_ids:
        return {}
    errors: dict[int, str | None] = {}
    with session_scope(session_factory(engine)) as session:
        for run in session.scalars(
            select(JobRun).where(JobRun.ok.is_(False)).order_by(JobRun.id.desc()).limit(5000)
        ):
            task = (run.summary or {}).get("task")
            if task in task_ids and task not in errors:
                errors[task] = run.error
    return errors
