"""One monitor cycle — crawl due sources → index → score → detect → notify — as steps the
scheduler runs on their own clocks and `simmim monitor once` runs in a row. Which steps
there are, their cadence, queue and order: ``monitor.steps``, the one table.

Each step's run is a JobRun row (start, end, outcome, summary): the scheduler reads its
due times from there after a restart, and the dashboard shows the last runs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from encoder.errors import EncoderError
from monitor.alerts import DetectSummary, detect
from monitor.models import JobRun
from monitor.rules import ensure_default_rules
from monitor.steps import CYCLE, followers, step
from simmim.clock import Clock, utcnow
from simmim.db import session_factory, session_scope
from simmim.locks import RunInProgress, run_lock
from simmim.settings import Settings

if TYPE_CHECKING:  # both import torch: loaded only when a step needs them
    from encoder import Encoder
    from indexer.index import StoreSet
    from monitor.notify import NotifySummary
    from monitor.scoring import Scorers

log = logging.getLogger(__name__)
ENCODER_RETRY_S = 600.0


class Runtime:
    """Long-lived resources of a monitor process; the encoder loads on first use."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        encoder: Encoder | None = None,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings, self.engine, self.clock = settings, engine, clock
        self._encoder = encoder
        self._scorers: Scorers | None = None
        self._keyword_scorers: Scorers | None = None
        self._writer: tuple[StoreSet, str] | None = None  # the writer's stores, their stamp
        self._followed: str | None = None  # the stores' stamp the encoder last followed
        self._encoder_failure: tuple[float, EncoderError] | None = None
        self.stop = threading.Event()
        self.sleep: Callable[[float], None] = sleep or self._interruptible_sleep
        self.wait_for_locks = False  # True: queue behind another run of a step, not refuse
        self.runner = f"{socket.gethostname()} pid {os.getpid()}"[:120]
        self.blocked: RunInProgress | None = None  # why run_once stopped early

    def _interruptible_sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)

    @property
    def encoder(self) -> Encoder:
        """Loaded on first use. A failure (no weights, no network) is remembered for
        ENCODER_RETRY_S, so the steps of one cycle do not each wait for it again."""
        if self._encoder is None:
            from encoder import load_encoder

            failed = self._encoder_failure
            if failed is not None and time.monotonic() - failed[0] < ENCODER_RETRY_S:
                raise failed[1]
            try:
                self._encoder = load_encoder(self.settings)
            except EncoderError as exc:
                unavailable = EncoderError(f"encoder unavailable: {exc.message}", hint=exc.hint)
                self._encoder_failure = (time.monotonic(), unavailable)
                raise unavailable from exc
            self._encoder_failure = None
        return self._encoder

    def serving_encoder(self) -> Encoder:
        """The encoder with the fusion the live index was built with: after a switch
        (self-training, a rebuild elsewhere) the next step follows it, towers kept."""
        from indexer.index import stores_stamp
        from indexer.live_fusion import following_index

        encoder = self.encoder
        stamp = stores_stamp(self.settings)
        if stamp != self._followed:
            self._encoder = following_index(self.settings, encoder)
            self._followed = stamp
            if self._encoder is not encoder:
                self._scorers = None  # they hold the encoder too
        assert self._encoder is not None
        return self._encoder

    @property
    def scorers(self) -> Scorers:
        if self._scorers is None:
            from monitor.scoring import Scorers

            self._scorers = Scorers(self.settings, self.encoder)
        return self._scorers

    @property
    def keyword_scorers(self) -> Scorers:
        """Scorers for when no model loads: sentiment, tickers, keyword topics."""
        if self._keyword_scorers is None:
            from monitor.scoring import Scorers

            self._keyword_scorers = Scorers(self.settings, None)
        return self._keyword_scorers

    # ---- steps: each returns a JSON-able summary

    def crawl(self) -> dict[str, Any]:
        from indexer.crawl import crawl

        outcomes = crawl(self.settings, self.engine, due_only=True)
        return {
            "sources": len(outcomes),
            "new": sum(o.new for o in outcomes),
            "failed_sources": [o.name for o in outcomes if not o.ok],
            # a dump or folder bigger than one crawl's cap: the rest comes next crawls
            "records_left": sum(o.remaining or 0 for o in outcomes if o.ok),
        }

    def index(self) -> dict[str, Any]:
        from indexer.pipeline.runner import run_ingest

        result = run_ingest(self.settings, self.engine, self.serving_encoder())
        return {"indexed": result.indexed, "failed": result.failed}

    def fusion(self) -> dict[str, Any]:
        """Self-training: train the fusion on the corpus once enough is new, and switch to
        it (re-index beside, swap) when it wins on held-out items."""
        from indexer.fusion_switch import not_self_training, self_train_step

        held_back = not_self_training(self.settings)
        if held_back is not None:
            return {"waiting": held_back}  # before loading a model it would not use
        step = self_train_step(self.settings, self.engine, self.serving_encoder())
        if step.attempt is not None and step.attempt.switched:
            self.close()  # the writer's stores were swapped out
            self.serving_encoder()  # follow the new index now
        return step.summary()

    def score(self) -> dict[str, Any]:
        from indexer.index import open_stores
        from monitor.scoring import score_new_items

        try:
            encoder = self.serving_encoder()
        except EncoderError as exc:  # text-only scoring now; topics by vector after a rescore
            log.warning("scoring by text alone: %s", exc.message)
            result = score_new_items(
                self.settings, self.engine, self.keyword_scorers, None, stop=self.stop
            )
            return {**asdict(result), "topics_by": f"keywords only ({exc.message})"}
        stores = open_stores(self.settings, encoder.fingerprint, encoder.dim, read_only=True)
        with closing(stores) as indexes:
            result = score_new_items(
                self.settings, self.engine, self.scorers, indexes, stop=self.stop
            )
        return asdict(result)

    def detect(self) -> dict[str, Any]:
        return asdict(self.detect_alerts())

    def notify(self) -> dict[str, Any]:
        sent = self.send_outbox()
        return {
            "emails": sent.messages,
            "notifications_sent": sent.sent,
            "notifications_pending": sent.pending,
            "email_error": sent.error,
            "email_failed": sent.failed,
            "emails_uncertain": sent.uncertain,
        }

    # ---- the same work cut into tasks, for workers (monitor.worker)

    def due_sources(self) -> list[int]:
        from indexer.crawl import select_sources

        with session_scope(session_factory(self.engine)) as session:
            due = select_sources(session, source_ids=None, due_only=True, now=self.clock())
            return [source.id for source in due]

    def crawl_source(self, source_id: int) -> dict[str, Any]:
        from indexer.crawl import crawl

        outcomes = crawl(
            self.settings, self.engine, source_ids=[source_id], due_only=True, side_by_side=True
        )
        outcome = outcomes[0] if outcomes else None
        if outcome is None:
            return {"source": source_id, "skipped": "not due (crawled meanwhile) or deleted"}
        if not outcome.ok:
            # The source's health and back-off are recorded; retrying the task now would
            # only hammer it. The next due time tries again.
            return {"source": outcome.name, "new": 0, "error": outcome.error}
        return {"source": outcome.name, "new": outcome.new, "failed": outcome.failed}

    def index_backlog(self) -> tuple[int, int]:
        """(pending items no worker has encoded yet, encoded items awaiting the writer)."""
        from indexer.pipeline.staged import staged_count, unstaged_pending

        return unstaged_pending(self.engine), staged_count(self.engine)

    def encode_batch(self) -> dict[str, Any]:
        """Claim, encode and stage a batch; on stores that take many writers (a Milvus
        server) write it there directly, beside other workers (a shared index lock: the
        writer's reconcile and growth take it alone)."""
        from indexer.index import SPACES, open_stores, shared_writes
        from indexer.pipeline.staged import encode_claimed
        from simmim.paths import DataLayout

        encoder, layout = self.serving_encoder(), DataLayout(self.settings.data_dir)
        batch = self.settings.worker.index_batch
        if not shared_writes(self.settings):
            return asdict(encode_claimed(self.engine, encoder, layout, batch=batch))
        with (
            run_lock(self.engine, "index", wait=True, shared=True),
            closing(open_stores(self.settings, encoder.fingerprint, encoder.dim)) as stores,
        ):
            # A space not created yet is the writer's to create (one creator, one name).
            ready = all(stores.spaces[space] is not None for space in SPACES)
            direct = stores if ready else None
            return asdict(encode_claimed(self.engine, encoder, layout, batch=batch, direct=direct))

    def write_index(self, *, reconcile: bool = True) -> dict[str, Any]:
        """Staged vectors into the stores (the caller holds the index lock)."""
        from indexer.index import SPACES, recover_stores, shared_writes, stores_stamp
        from indexer.pipeline.staged import staged_count, write_staged

        for done in recover_stores(self.settings):
            log.warning("indexes: %s", done)
        encoder = self.serving_encoder()
        stores = self._writer_stores(encoder.fingerprint, encoder.dim)
        try:
            summary = write_staged(
                self.engine, stores, encoder.fingerprint, encoder.dim, reconcile=reconcile
            )
            missing = [space for space in SPACES if stores.spaces[space] is None]
            if missing and shared_writes(self.settings):  # then encoders may write directly
                for space in missing:
                    stores.get(space)  # created and published, under the exclusive lock
                stores.save(missing)
        except BaseException:
            self.close()  # what it holds in memory may be ahead of its files: reload next time
            raise
        self._writer = (stores, stores_stamp(self.settings))
        return {
            "indexed": summary.indexed,
            "failed": summary.failed,
            "requeued": summary.requeued,
            "removed": summary.removed,
            "grown": [space.value for space in summary.rebuilt],
            "more": staged_count(self.engine) > 0,
        }

    def _writer_stores(self, fingerprint: str, dim: int) -> StoreSet:
        """The stores the index writer adds to, kept from one write to the next while their
        stamp says nobody else changed them: reloading every index file after each encoded
        batch would cost a read of the whole index per batch."""
        from indexer.index import open_stores, stores_stamp

        if self._writer is not None:
            stores, stamp = self._writer
            same = stores.fingerprint == fingerprint and stores.dim == dim
            if same and stamp == stores_stamp(self.settings):
                return stores
            self.close()
        return open_stores(self.settings, fingerprint, dim)

    def close(self) -> None:
        """Let go of the stores the writer kept."""
        if self._writer is not None:
            self._writer[0].close()
            self._writer = None

    def detect_alerts(self) -> DetectSummary:
        ensure_default_rules(self.engine)
        return detect(self.settings, self.engine, clock=self.clock)

    def send_outbox(self) -> NotifySummary:
        """One sender at a time (scheduler, CLI or worker): the outbox is read, then sent."""
        from monitor.notify import send_pending

        with run_lock(self.engine, "notify", wait=True):
            return send_pending(self.settings, self.engine, clock=self.clock, sleep=self.sleep)

    def run_step(self, name: str) -> JobRun:
        """Run one step of the table and record it; an exception is recorded, logged, and
        not raised.

        Each step holds its run lock meanwhile, so two processes never run the same step at
        once; RunInProgress (another process has it) is raised, with no JobRun recorded."""
        row = step(name)
        if row.own_lock:  # its work takes the lock (and waits for it) itself
            return self.record(name, lambda: row.work(self))
        with run_lock(self.engine, name, wait=self.wait_for_locks):
            return self.record(name, lambda: row.work(self))

    def run_clocked(self, name: str) -> list[JobRun]:
        """A clocked step and the steps that follow it (notify after detect), as the
        scheduler runs them: a follower runs even when the step failed (what is owed
        from before still goes out)."""
        runs = [self.run_step(name)]
        for after in followers(name):
            runs.extend(self.run_clocked(after.name))
        return runs

    def record(
        self,
        job: str,
        work: Callable[[], dict[str, Any]],
        *,
        due_at: datetime | None = None,
        task_id: int | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> JobRun:
        """Run ``work`` as one JobRun row (start, end, outcome, summary, who ran it).

        An exception is recorded and logged, not raised: a failing step must not stop the
        scheduler. Workers raise from the row to have the task retried."""
        factory = session_factory(self.engine)
        with session_scope(factory) as session:
            tag = {} if task_id is None else {"task": task_id}  # named while it runs, too
            run = JobRun(
                job=job, started_at=self.clock(), runner=self.runner, due_at=due_at, summary=tag
            )
            session.add(run)
            session.flush()
            run_id = run.id
        if on_start is not None:  # e.g. the API, answering with the run's id at once
            on_start(run_id)
        ok, summary, error = True, {}, None
        try:
            summary = work()
        except Exception as exc:
            log.exception("monitor step %s failed", job)
            ok, error = False, f"{type(exc).__name__}: {exc}"
        summary = {**summary, **tag}
        with session_scope(factory) as session:
            done = session.get(JobRun, run_id)
            assert done is not None
            done.finished_at, done.ok, done.summary, done.error = self.clock(), ok, summary, error
            session.flush()
            session.expunge(done)
            return done

    def run_once(self, steps: tuple[str, ...] = CYCLE) -> list[JobRun]:
        """The steps in order; stops at a step another process is running (``blocked``)."""
        runs = []
        self.blocked = None
        for name in steps:
            if self.stop.is_set():
                break
            try:
                runs.append(self.run_step(name))
            except RunInProgress as exc:
                self.blocked = exc
                break
        return runs


def last_finished(engine: Engine, step: str) -> datetime | None:
    with session_scope(session_factory(engine)) as session:
        return session.scalar(
            select(JobRun.finished_at)
            .where(JobRun.job == step, JobRun.finished_at.is_not(None))
            .order_by(JobRun.finished_at.desc())
            .limit(1)
        )


def recent_runs(engine: Engine, limit: int = 20) -> list[JobRun]:
    with session_scope(session_factory(engine)) as session:
        rows = list(session.scalars(select(JobRun).order_by(JobRun.started_at.desc()).limit(limit)))
        session.expunge_all()
        return rows
