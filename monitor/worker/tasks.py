"""The monitor's steps as Procrastinate tasks on PostgreSQL, for `simmim worker`.

The clocked steps of ``monitor.steps`` (plan crawl, plan index, score, detect, fusion
self-training) are Procrastinate periodic tasks, and the steps that follow them (notify
after detect) tasks they defer: every worker runs the deferrer, the database's unique (task,
due time) row makes each due time run once. Planners fan work out: one ``crawl_source`` task per due source, up to
``worker.encode_slots`` ``encode_batch`` tasks (each claims its own items with SKIP
LOCKED, so they run side by side on any worker) and one ``write_index``.

Locks: ``lock=`` keeps one run of a name at a time across workers (one index writer, one
scorer, one detection, one sender); ``queueing_lock=`` keeps at most one waiting copy.
The steps also take the same run locks as `simmim monitor once` / `monitor run`, so a
worker and a scheduler or CLI run never overlap either.

A task that raises is retried (``worker.max_attempts``, ``worker.retry_wait_s``); each try
is a JobRun row with its error, which `simmim monitor status` shows.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.job_context import JobContext
from procrastinate.jobs import JobDeferrer
from sqlalchemy.engine import make_url

from monitor.cycle import Runtime
from monitor.steps import TABLE, Step, followers, scheduled
from monitor.worker.schedule import cron_every
from simmim.errors import SimmimError
from simmim.locks import run_lock

log = logging.getLogger(__name__)
QUEUES = ("crawl", "index", "score", "notify")


class TaskFailed(SimmimError):
    """A step's error, raised so that the queue retries the task (its JobRun has it)."""


def conninfo(database_url: str) -> str:
    """The SQLAlchemy URL as libpq takes it (options such as search_path kept)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise SimmimError(
            f"workers need PostgreSQL; the database is {url.get_backend_name()}",
            hint="set SIMMIM_DATABASE__URL=postgresql+psycopg://… (with SQLite, run "
            "`simmim monitor run`: the in-process scheduler)",
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def build_app(runtime: Runtime) -> procrastinate.App:
    """The task catalogue bound to one process's runtime (settings, engine, encoder)."""
    settings = runtime.settings
    config, every = settings.worker, settings.monitor
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo(settings.database_url)),
        # A worker started after a pause runs the latest missed due time, not each one.
        periodic_defaults={"max_delay": float(max(every.misfire_grace_s, 1))},
    )
    # Procrastinate counts retries after the first try; 0 would mean "retry for ever".
    retry: procrastinate.RetryStrategy | bool = (
        procrastinate.RetryStrategy(max_attempts=config.max_attempts - 1, wait=config.retry_wait_s)
        if config.max_attempts > 1
        else False
    )

    def ran(
        context: JobContext,
        job: str,
        work: Any,
        *,
        due: int | None = None,
        lock: str | None = None,
    ) -> dict[str, Any]:
        """Record the run (with the task's id); raise its error so the queue retries it."""
        due_at = datetime.fromtimestamp(due, UTC) if due is not None else None

        def locked() -> dict[str, Any]:
            if lock is None:
                return dict(work())
            with run_lock(runtime.engine, lock, wait=True):
                return dict(work())

        run = runtime.record(job, locked, due_at=due_at, task_id=context.job.id)
        if not run.ok:
            raise TaskFailed(f"{job} failed: {run.error}")
        return run.summary

    def defer(task: procrastinate.tasks.Task[Any, Any, Any] | JobDeferrer, **kwargs: Any) -> bool:
        try:
            task.defer(**kwargs)
        except AlreadyEnqueued:  # a copy already waits: it will see this work too
            return False
        return True

    # ---- the clocked steps of monitor.steps, and the steps that follow them

    tasks: dict[str, procrastinate.tasks.Task[Any, Any, Any]] = {}

    def plan_crawl() -> dict[str, Any]:
        due = runtime.due_sources()
        queued = sum(
            defer(
                crawl_source.configure(
                    queueing_lock=f"crawl:{source_id}", lock=f"crawl:{source_id}"
                ),
                source_id=source_id,
            )
            for source_id in due
        )
        return {"due": len(due), "queued": queued}

    def plan_index() -> dict[str, Any]:
        unstaged, staged = runtime.index_backlog()
        slots = min(config.encode_slots, math.ceil(unstaged / config.index_batch))
        queued = sum(defer(encode_slot(slot), slot=slot) for slot in range(slots))
        # Every tick, as the scheduler's index step does: reconcile (database and index
        # agree), write what is staged, grow. Its own waiting copy, so a stream of
        # chained writes (which skip reconciling) cannot crowd it out.
        defer(write_index.configure(queueing_lock="reconcile_index"), reconcile=True)
        return {"unstaged": unstaged, "staged": staged, "encode_tasks": queued}

    planners = {"crawl": plan_crawl, "index": plan_index}

    def step_task(row: Step) -> procrastinate.tasks.Task[Any, Any, Any]:
        def body(context: JobContext, timestamp: int | None = None) -> None:
            work = planners[row.name] if row.plans else (lambda: row.work(runtime))
            lock = None if row.plans or row.own_lock else row.name
            ran(context, row.name, work, due=timestamp, lock=lock)
            for after in followers(row.name):  # notify after detect: alerts, and owed email
                defer(tasks[after.name], timestamp=None)

        body.__name__ = row.task
        return app.task(
            pass_context=True,
            name=f"simmim.{row.task}",
            queue=row.queue,
            lock=row.task_lock,
            queueing_lock=row.task_lock,
            retry=retry if row.retry else False,
        )(body)

    clocked = scheduled(settings)
    for row in TABLE:
        if row.every is not None and row.name not in clocked:
            continue  # switched off (self-training)
        tasks[row.name] = step_task(row)
        if row.name in clocked:
            app.periodic(cron=cron_every(clocked[row.name]), periodic_id=row.name)(tasks[row.name])

    # ---- what the planners fan out: a crawl per source, many encoders, one index writer

    @app.task(pass_context=True, name="simmim.crawl_source", queue="crawl", retry=retry)
    def crawl_source(context: JobContext, source_id: int) -> None:
        summary = ran(context, "crawl-source", lambda: runtime.crawl_source(source_id))
        if summary.get("new"):
            defer(tasks["index"], timestamp=None)

    def encode_slot(slot: int) -> Any:
        return encode_batch.configure(queueing_lock=f"encode:{slot}")

    @app.task(pass_context=True, name="simmim.encode_batch", queue="index", retry=retry)
    def encode_batch(context: JobContext, slot: int) -> None:
        summary = ran(context, "encode", runtime.encode_batch)
        if summary.get("staged"):
            defer(write_index)
        if summary.get("claimed", 0) >= config.index_batch:  # likely more: keep the slot busy
            defer(encode_slot(slot), slot=slot)

    @app.task(
        pass_context=True,
        name="simmim.write_index",
        queue="index",
        lock="write_index",
        queueing_lock="write_index",
        retry=retry,
    )
    def write_index(context: JobContext, reconcile: bool = False) -> None:
        """Reconciling reads every id of index and database: once per planner tick, not
        after every encoded batch."""
        summary = ran(
            context, "index-write", lambda: runtime.write_index(reconcile=reconcile), lock="index"
        )
        if summary.get("more"):
            defer(write_index)

    return app
