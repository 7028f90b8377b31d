"""One `simmim worker` process: take tasks until SIGTERM/SIGINT, hand back a dead one's.

SIGTERM (or Ctrl-C) stops fetching, lets the running task finish (long steps also see
``runtime.stop`` between batches) and exits; a second signal aborts at once. A worker that
dies without a word (kill -9, a lost machine) stops its heartbeat: after
``worker.stalled_after_s`` any live worker puts its running tasks back in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable

from procrastinate import App
from procrastinate.exceptions import ConnectorException, UniqueViolation
from procrastinate.jobs import Status
from procrastinate.worker import Worker

from encoder.errors import EncoderError
from monitor.cycle import Runtime
from monitor.worker.tasks import QUEUES, build_app

log = logging.getLogger(__name__)


def run_worker(
    runtime: Runtime,
    *,
    queues: Iterable[str] = QUEUES,
    concurrency: int | None = None,
    name: str | None = None,
) -> None:
    """Block until stopped by a signal (or ``runtime.stop``)."""
    queues = list(queues)
    if {"index", "score"} & set(queues):
        _load_model(runtime)
    app = build_app(runtime)
    try:
        asyncio.run(_serve(app, runtime, queues, concurrency, name))
    finally:
        runtime.close()


def _load_model(runtime: Runtime) -> None:
    """Before taking tasks: a worker that took an encode batch first and loaded the model
    then would sit on it for seconds while warm workers wait for work."""
    try:
        runtime.encoder  # noqa: B018  (loads it)
    except EncoderError as exc:  # the tasks needing it fail visibly, with this error
        log.error("%s", exc.message)


async def _serve(
    app: App, runtime: Runtime, queues: list[str], concurrency: int | None, name: str | None
) -> None:
    config = runtime.settings.worker
    async with app.open_async():
        worker = Worker(
            app,
            queues=queues,
            name=name or runtime.runner,
            concurrency=concurrency or config.concurrency,
            fetch_job_polling_interval=config.poll_s,
            update_heartbeat_interval=config.heartbeat_s,
            stalled_worker_timeout=config.stalled_after_s,
            install_signal_handlers=False,
            delete_jobs="never",  # finished rows stay for `monitor status`; pruned by age
        )
        loop = asyncio.get_running_loop()
        signals = 0

        def on_signal(signum: int) -> None:
            nonlocal signals
            signals += 1
            runtime.stop.set()
            if signals == 1:
                log.warning(
                    "received %s: finishing the running task, then stopping",
                    signal.Signals(signum).name,
                )
                worker.stop()
            else:
                log.warning("second signal: abandoning the running task")
                raise SystemExit(1)

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        housekeeping = asyncio.create_task(_housekeeping(app, runtime))
        stop_watch = asyncio.create_task(_follow_stop_flag(runtime, worker))
        try:
            await worker.run()
        finally:
            for task in (housekeeping, stop_watch):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


async def _follow_stop_flag(runtime: Runtime, worker: Worker) -> None:
    """``runtime.stop`` set from elsewhere (tests, an embedding program) stops the worker."""
    while not runtime.stop.is_set():
        await asyncio.sleep(0.2)
    worker.stop()


async def _housekeeping(app: App, runtime: Runtime) -> None:
    """Every worker, every half stall timeout: tasks of dead workers back to the queue,
    finished task rows past ``worker.keep_finished_h`` deleted."""
    config = runtime.settings.worker
    while True:
        await asyncio.sleep(config.stalled_after_s / 2)
        try:
            await retry_stalled(app, config.stalled_after_s)
            await app.job_manager.delete_old_jobs(
                nb_hours=config.keep_finished_h, include_failed=False
            )
        except ConnectorException as exc:  # database away a moment: try next round
            log.warning("worker housekeeping: %s", exc)


async def retry_stalled(app: App, stalled_after_s: float) -> int:
    """Requeue the running tasks of workers silent for ``stalled_after_s``; returns how many
    were handed back (requeued, or failed where a waiting copy will do the same work).

    Their work is safe to do again: items are claimed by row locks that died with the
    worker, vectors are staged by item id, emails carry their Message-ID. A task whose
    queueing lock a waiting copy holds cannot be requeued (the lock admits one waiting
    copy). Without a run lock it is requeued once that copy has started; with one (the
    index writer) the copy could never start, so the dead task is marked aborted, which
    frees the lock: the copy does the same work (left "doing", it blocked every task of
    its lock for ever)."""
    handed_back = 0
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s):
        try:
            await app.job_manager.retry_job(job)
            log.warning("requeued task %s #%s of a stalled worker", job.task_name, job.id)
        except UniqueViolation:
            if job.lock is None:
                continue  # its copy is free to start; requeued once it has
            await app.job_manager.finish_job(job, status=Status.ABORTED, delete_job=False)
            log.warning(
                "task %s #%s of a stalled worker aborted: it held lock %s, and a waiting "
                "copy (queueing lock %s) does its work",
                job.task_name,
                job.id,
                job.lock,
                job.queueing_lock,
            )
        except ConnectorException:  # another worker handed it back first
            continue
        handed_back += 1
    return handed_back
