"""Workers on the real PostgreSQL: many `simmim worker` processes, each step once, nothing lost.

Three workers crawl local feeds, encode a backlog, write the index, score, detect and email
for a bounded time; one is killed with SIGKILL in the middle of an encode batch. Afterwards
database and index agree, every item is indexed once, every periodic due time ran once, no
locked step overlapped itself, encoding ran on more than one worker, every alert was
emailed exactly once, and the others stop cleanly on SIGTERM.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
import uuid
from collections import Counter, defaultdict
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from indexer.index import open_stores, stores_status
from monitor.models import JobRun, Notification
from monitor.rules import ensure_default_rules
from monitor.worker import monitor_status
from simmim import migrations
from simmim.db import make_engine, session_factory, session_scope
from simmim.models import SPACES, Item, ItemStatus, Source, SourceKind, Space, StagedVectors
from simmim.settings import Settings
from tests.crawl_helpers import rss
from tests.http_server import LocalServer, Reply
from tests.monitor_helpers import daily, seed
from tests.smtp_server import MailServer, free_port
from tests.worker_processes import running_workers, wait_for, worker_env

pytestmark = pytest.mark.postgres

BASE = [6, 5, 7, 6, 5, 6, 7, 5, 6, 6, 5, 7, 6, 5, 6]
FEEDS, PER_FEED, BACKLOG = 4, 12, 1200
LOCKED_STEPS = ("crawl", "index", "index-write", "score", "detect", "notify")
PERIODIC_STEPS = ("crawl", "index", "score", "detect")


@pytest.fixture
def pg(postgres_url: str) -> Engine:
    engine = make_engine(postgres_url)
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


def _fast_settings(mail_port: int, **extra: object) -> dict[str, object]:
    return {
        "monitor__crawl_every_s": 2,
        "monitor__index_every_s": 2,
        "monitor__score_every_s": 2,
        "monitor__detect_every_s": 3,
        "worker__index_batch": 20,
        "worker__encode_slots": 6,
        "worker__heartbeat_s": 0.5,
        "worker__stalled_after_s": 3,
        "worker__poll_s": 0.5,
        "worker__retry_wait_s": 0,
        "crawler__allow_loopback": "true",
        "crawler__per_host_interval_s": 0,
        "smtp__host": "127.0.0.1",
        "smtp__port": mail_port,
        "smtp__security": "none",
        "smtp__recipients": '["desk@example.test"]',
        "smtp__sender": "alerts@simmim.test",
        **extra,
    }


def _backlog(engine: Engine, http_server: LocalServer) -> None:
    """A spike to alert on, a backlog of pending items, and feeds to crawl."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    seed(engine, daily([*BASE, 60], start=today - timedelta(days=len(BASE) + 1)))
    ensure_default_rules(engine)
    with session_scope(session_factory(engine)) as session:
        source = session.scalar(select(Source))
        assert source is not None
        source.enabled = False  # seeded history only: its made-up URL is not crawled
        for n in range(BACKLOG):
            session.add(
                Item(
                    source_id=source.id,
                    title=f"Backlog note {n} on quarterly earnings and guidance",
                    url=f"http://example.test/backlog/{n}",
                    status=ItemStatus.PENDING,
                )
            )
        for feed in range(FEEDS):
            path = f"/feed{feed}.xml"
            entries = [
                {
                    "title": f"Feed {feed} story {i}: shares move on results",
                    "link": http_server.url(f"/story/{feed}/{i}"),
                }
                for i in range(PER_FEED)
            ]
            for i in range(PER_FEED):
                http_server.routes[f"/story/{feed}/{i}"] = Reply(
                    body=f"<html><body><p>Story {i} of feed {feed}.</p></body></html>".encode(),
                    headers={"Content-Type": "text/html"},
                )
            http_server.routes[path] = Reply(
                body=rss(entries), headers={"Content-Type": "application/rss+xml"}
            )
            session.add(
                Source(name=f"feed {feed}", kind=SourceKind.RSS, location=http_server.url(path))
            )


def _pending_notes(engine: Engine, titles: list[str]) -> None:
    """Pending items with these titles, from a source no crawl reads."""
    with session_scope(session_factory(engine)) as session:
        source = Source(name="notes", kind=SourceKind.RSS, location="http://x/notes", enabled=False)
        session.add(source)
        session.flush()
        session.add_all(
            Item(source_id=source.id, title=title, status=ItemStatus.PENDING) for title in titles
        )


def _count(engine: Engine, *where: object) -> int:
    with session_scope(session_factory(engine)) as session:
        return session.scalar(select(func.count(Item.id)).where(*where)) or 0  # type: ignore[arg-type]


def _runs(engine: Engine) -> list[JobRun]:
    with session_scope(session_factory(engine)) as session:
        rows = list(session.scalars(select(JobRun).order_by(JobRun.id)))
        session.expunge_all()
        return rows


def _running_encode_of(engine: Engine, name: str) -> JobRun | None:
    with session_scope(session_factory(engine)) as session:
        run = session.scalar(
            select(JobRun).where(
                JobRun.job == "encode", JobRun.runner == name, JobRun.finished_at.is_(None)
            )
        )
        if run is not None:
            session.expunge(run)
        return run


def test_three_workers_run_each_step_once_and_survive_a_kill(
    pg: Engine, postgres_url: str, tmp_path: Path, tiny_weights: Path, http_server: LocalServer
) -> None:
    _backlog(pg, http_server)
    mail = MailServer(free_port())
    mail.start()
    data_dir = tmp_path / "data"
    env = worker_env(postgres_url, data_dir, tiny_weights, **_fast_settings(mail.port))
    started = time.monotonic()
    try:
        with running_workers(env, tmp_path / "logs") as workers:
            victim = workers.start("w0")
            workers.start("w1")
            workers.start("w2")
            killed = wait_for(
                lambda: _running_encode_of(pg, "w0"),
                timeout=120,
                what="worker w0 in the middle of an encode batch",
                every=0.02,
            )
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()

            def settled() -> bool:
                with session_scope(session_factory(pg)) as session:
                    pending = session.scalar(
                        select(func.count(Item.id)).where(Item.status == ItemStatus.PENDING)
                    )
                    staged = session.scalar(select(func.count(StagedVectors.item_id)))
                    unsent = session.scalar(
                        select(func.count(Notification.id)).where(Notification.sent_at.is_(None))
                    )
                    sent = session.scalar(select(func.count(Notification.id)))
                    crawled = session.scalar(
                        select(func.count(Item.id)).where(
                            Item.url.like(f"{http_server.url('/story')}%")
                        )
                    )
                    handed_on = session.scalar(
                        text("SELECT status::text FROM procrastinate_jobs WHERE id = :id"),
                        {"id": killed.summary["task"]},  # type: ignore[attr-defined]
                    )
                return (
                    handed_on == "succeeded"  # requeued once w0's heartbeat stopped
                    and pending == 0
                    and staged == 0
                    and crawled == FEEDS * PER_FEED
                    and bool(sent)
                    and unsent == 0
                )

            try:
                wait_for(settled, timeout=300, what="the backlog indexed, feeds crawled, mail sent")
            except AssertionError:
                raise AssertionError(workers.all_output()) from None
            codes = workers.terminate(timeout=60)
            assert codes[1:] == [0, 0], workers.all_output()
            assert "worker stopped" in workers.output("w1")
    finally:
        mail.stop()
    took = time.monotonic() - started

    # Database and index agree; nothing duplicated, nothing lost.
    settings = Settings(data_dir=data_dir, database={"url": postgres_url})  # type: ignore[arg-type]
    manifest = stores_status(settings)["fused"]
    fingerprint, dim = manifest["fingerprint"], manifest["dim"]
    with session_scope(session_factory(pg)) as session:
        items = list(session.execute(select(Item.id, Item.status, Item.indexed_spaces)))
    assert items and all(status == ItemStatus.INDEXED for _, status, _ in items)
    stores = open_stores(settings, fingerprint, dim, read_only=True)
    try:
        for space in SPACES:
            in_index = stores.get(space).ids()
            assert len(in_index) == len(set(in_index.tolist()))
            vouched = {i for i, _, bits in items if bits & space.bit}
            assert set(in_index.tolist()) == vouched, space
    finally:
        stores.close()

    runs = _runs(pg)
    # Each periodic due time ran once, however many workers saw it come.
    for step in PERIODIC_STEPS:
        due = [run.due_at for run in runs if run.job == step and run.due_at is not None]
        assert due, f"{step} never ran on its schedule"
        assert not [d for d, n in Counter(due).items() if n > 1], step
    # No locked step overlapped itself (the killed worker's unfinished run aside).
    by_step: dict[str, list[JobRun]] = defaultdict(list)
    for run in runs:
        if run.finished_at is not None:
            by_step[run.job].append(run)
    for step in LOCKED_STEPS:
        spans = sorted((r.started_at, r.finished_at) for r in by_step[step])
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"{step} overlapped itself"
    # Encoding spread over the workers; the killed batch was handed to another one.
    encoders = {run.runner for run in by_step["encode"] if run.summary.get("claimed")}
    assert len(encoders) >= 2, str(sorted(Counter((r.runner, r.job) for r in runs).items()))
    retried = [r for r in runs if r.summary.get("task") == killed.summary["task"]]  # type: ignore[attr-defined]
    assert len(retried) == 2 and retried[-1].ok and retried[-1].runner != "w0"
    # Every alert emailed exactly once.
    with session_scope(session_factory(pg)) as session:
        notes = list(session.scalars(select(Notification)))
    sent_ids = {n.message_id for n in notes}
    inbox_ids = [str(m["Message-ID"]).strip() for m in mail.inbox.messages]
    assert notes and all(n.sent_at is not None for n in notes)
    assert len(inbox_ids) == len(set(inbox_ids)) and set(inbox_ids) == sent_ids
    status = monitor_status(pg)
    assert status.queue and {s.job for s in status.steps} >= set(LOCKED_STEPS)
    print(f"three workers settled in {took:.0f}s")  # noqa: T201


def test_sigterm_finishes_the_running_task_then_exits(
    pg: Engine, postgres_url: str, tmp_path: Path, tiny_weights: Path
) -> None:
    _pending_notes(pg, [f"note {n} " * 20 for n in range(400)])
    env = worker_env(
        postgres_url,
        tmp_path / "data",
        tiny_weights,
        **_fast_settings(free_port(), worker__index_batch=400, monitor__index_every_s=1),
    )
    with running_workers(env, tmp_path / "logs") as workers:
        worker = workers.start("solo")
        run = wait_for(
            lambda: _running_encode_of(pg, "solo"), timeout=120, what="an encode batch", every=0.02
        )
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=120) == 0, workers.all_output()
    with session_scope(session_factory(pg)) as session:
        done = session.get(JobRun, run.id)  # type: ignore[union-attr]
        assert done is not None and done.finished_at is not None and done.ok, workers.all_output()
        assert done.summary["claimed"] == 400
        assert session.scalar(select(func.count(StagedVectors.item_id))) == 400


def test_a_failing_task_stops_after_its_tries_with_the_error_shown(
    pg: Engine, postgres_url: str, tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    _pending_notes(pg, ["a note"])
    missing = tmp_path / "no-such-weights.safetensors"
    env = worker_env(
        postgres_url,
        tmp_path / "data",
        missing,
        **_fast_settings(free_port(), worker__max_attempts=2, monitor__index_every_s=60),
    )
    with running_workers(env, tmp_path / "logs") as workers:
        workers.start("solo")

        def failed_encode() -> bool:
            with pg.connect() as connection:
                return bool(
                    connection.scalar(
                        text(
                            "SELECT count(*) FROM procrastinate_jobs"
                            " WHERE task_name = 'simmim.encode_batch' AND status = 'failed'"
                        )
                    )
                )

        try:
            wait_for(failed_encode, timeout=120, what="the encode task to fail for good")
        except AssertionError:
            raise AssertionError(workers.all_output()) from None
        assert workers.terminate() == [0]
    tries = [run for run in _runs(pg) if run.job == "encode"]
    assert len(tries) == 2 and not any(run.ok for run in tries)
    assert all("no-such-weights" in (run.error or "") for run in tries)
    status = monitor_status(pg)
    [failed] = [task for task in status.failed if task.task == "simmim.encode_batch"]
    assert failed.attempts == 2 and "no-such-weights" in (failed.error or "")
    os.environ["SIMMIM_DATABASE__URL"] = postgres_url
    try:
        shown = cli("monitor", "status")
    finally:
        del os.environ["SIMMIM_DATABASE__URL"]
    # (the path in the error is folded across table lines: its start is enough)
    assert "failed tasks" in shown and "simmim.encode_batch" in shown and "EncoderError" in shown


def test_workers_on_a_milvus_server_write_the_index_side_by_side(
    pg: Engine, postgres_url: str, tmp_path: Path, tiny_weights: Path, milvus_server_uri: str
) -> None:
    """A Milvus server takes writes from many processes: encoders add and mark directly."""
    from indexer.index.milvus_store import MilvusStores

    _pending_notes(pg, [f"note {n} on rates" for n in range(600)])
    prefix = f"w{uuid.uuid4().hex[:10]}"
    index = {"backend": "milvus", "milvus_uri": milvus_server_uri, "milvus_prefix": prefix}
    env = worker_env(
        postgres_url,
        tmp_path / "data",
        tiny_weights,
        **_fast_settings(free_port(), **{f"index__{k}": v for k, v in index.items()}),
    )
    settings = Settings(data_dir=tmp_path / "data", index=index)  # type: ignore[arg-type]
    try:
        with running_workers(env, tmp_path / "logs") as workers:
            workers.start("m1")
            workers.start("m2")
            try:
                wait_for(
                    lambda: _count(pg, Item.status != ItemStatus.INDEXED) == 0,
                    timeout=240,
                    what="every item indexed",
                )
            except AssertionError:
                raise AssertionError(workers.all_output()) from None
            assert workers.terminate() == [0, 0], workers.all_output()
        runs = [run for run in _runs(pg) if run.job == "encode" and run.ok]
        direct = Counter(run.runner for run in runs if run.summary.get("written"))
        assert len(direct) == 2, direct  # both wrote to Milvus themselves
        # The first batches are staged: the writer creates the collections (one creator).
        assert sum(run.summary.get("written", 0) for run in runs) >= 300
        manifest = stores_status(settings)["text"]
        with closing(
            open_stores(settings, manifest["fingerprint"], manifest["dim"], read_only=True)
        ) as stores:
            in_index = stores.get(Space.TEXT).ids()
        assert len(in_index) == len(set(in_index.tolist())) == 600
        with session_scope(session_factory(pg)) as session:
            assert session.scalar(select(func.count(StagedVectors.item_id))) == 0
    finally:
        stores = MilvusStores(settings, "", 0, load=False)
        stores.drop_all()
        stores.close()


def test_step_summaries_read_in_words() -> None:
    """Issue 35: the System page showed raw None values and a Python dict cut off."""
    from monitor.worker.status import summary_words

    said = summary_words(
        {
            "sources": 3,
            "new": 12,
            "failed_sources": ["wire", "blog"],
            "email_error": None,
            "more": False,
            "grown": [],
            "reasons": {"bad_time": 2},
            "topics_by": "keywords only",
        }
    )
    assert said == (
        "3 sources, 12 new items, failed sources: wire, blog, reasons: 2 bad time, "
        "topics by: keywords only"
    )
    assert "None" not in said and "{" not in said and "[" not in said
    many = summary_words({"fired": list(range(1, 9)), "errors": list("abcdefg")})
    assert many == "8 alert(s) fired (#1, #2, #3, #4, #5 …), errors: a, b, c, d, e and 2 more"
