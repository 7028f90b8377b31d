"""Workers: one and two `simmim worker` processes on the same backlog, the queue's own cost,
and a Ray rebuild against the in-process one.

    python bench/workers.py [-n 20000] [--postgres URL] [--no-ray]

Each run gets a fresh PostgreSQL schema holding the same synthetic backlog (n pending items:
a headline each, a small picture for every fourth) and the tiny model (random weights:
speed does not depend on their values). A run's rate is items / (last index write − first
encode start): model loading is not counted. Workers run one torch thread each
(OMP_NUM_THREADS=1: one worker per core, the deployment the README suggests); the
one-worker run with every core's threads is reported beside it.

``task_overhead_ms``: a no-op task deferred and run through the same queue, per task.
Ray: the rebuild of the same items encoded in-process, then on a local Ray (two actors at
half a CPU each), items/s of each.

Progress on stderr; the last stdout line is one JSON object: items_per_s_1,
items_per_s_2, ratio, task_overhead_ms, items_per_s_1_all_threads, ray.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

# This file is named like nothing of ours, but keep the bench folder off the path anyway.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from sqlalchemy import Engine, create_engine, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from monitor.models import JobRun  # noqa: E402
from simmim.db import make_engine, session_factory, session_scope  # noqa: E402
from simmim.migrations import upgrade  # noqa: E402
from simmim.models import Item, ItemStatus, Source, SourceKind  # noqa: E402
from simmim.paths import DataLayout  # noqa: E402
from tests.processes import terminate  # noqa: E402

SIMMIM = str(Path(sys.executable).parent / "simmim")
WORDS = "shares bank rates oil chip retailer vaccine recall profit warning merger probe".split()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def fresh_schema(base_url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def seed_backlog(engine: Engine, data_dir: Path, n: int) -> None:
    upgrade(engine)
    layout = DataLayout(data_dir)
    layout.create()
    rng = np.random.default_rng(0)
    pictures = []
    for i in range(16):  # a few distinct pictures, shared (as near-identical wire photos are)
        sha = f"{i:064x}"
        path = layout.image_path(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)).save(path, "PNG")
        pictures.append(sha)
    with session_scope(session_factory(engine)) as session:
        source = Source(name="wire", kind=SourceKind.RSS, location="http://x/wire", enabled=False)
        session.add(source)
        session.flush()
        source_id = source.id
    rows = [
        {
            "source_id": source_id,
            "title": " ".join(rng.choice(WORDS, 8)) + f" #{i}",
            "image_sha256": pictures[i % 16] if i % 4 == 0 else None,
            "status": ItemStatus.PENDING,
            "crawled_at": datetime.now(UTC),
            "indexed_spaces": 0,
        }
        for i in range(n)
    ]
    with engine.begin() as connection:
        for start in range(0, n, 5000):
            connection.execute(insert(Item), rows[start : start + 5000])


def worker_env(db_url: str, data_dir: Path, threads: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMMIM_")}
    env.update(
        {
            "SIMMIM_DATA_DIR": str(data_dir),
            "SIMMIM_DATABASE__URL": db_url,
            "SIMMIM_ENCODER__MODEL": "simmim-tiny",
            "SIMMIM_ENCODER__PRETRAINED": "none",
            "SIMMIM_ENCODER__CPU_INT8": "false",
            "SIMMIM_ENCODER__WORKERS": "0",
            "SIMMIM_FUSION__SELF_TRAIN": "false",  # a fixed model for every run compared
            "SIMMIM_MONITOR__INDEX_EVERY_S": "2",
            "SIMMIM_MONITOR__CRAWL_EVERY_S": "3600",
            "SIMMIM_MONITOR__SCORE_EVERY_S": "3600",
            "SIMMIM_MONITOR__DETECT_EVERY_S": "3600",
            "SIMMIM_WORKER__INDEX_BATCH": "256",
            "SIMMIM_WORKER__POLL_S": "0.5",
        }
    )
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_workers(base_url: str, n: int, processes: int, threads: int | None) -> float:
    """Items/s of ``processes`` workers draining an n-item backlog."""
    with fresh_schema(base_url) as db_url, tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        engine = make_engine(db_url)
        seed_backlog(engine, data_dir, n)
        env = worker_env(db_url, data_dir, threads)
        started = [
            subprocess.Popen(
                [SIMMIM, "worker", "--queues", "index", "--name", f"w{i}"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(processes)
        ]
        try:
            deadline = time.monotonic() + 3600
            while time.monotonic() < deadline:
                with session_scope(session_factory(engine)) as session:
                    left = session.scalar(
                        select(func.count(Item.id)).where(Item.status == ItemStatus.PENDING)
                    )
                if not left:
                    break
                time.sleep(0.5)
            else:
                raise SystemExit("the workers did not finish within an hour")
        finally:
            terminate(started, timeout=60)
        with session_scope(session_factory(engine)) as session:
            first = session.scalar(
                select(func.min(JobRun.started_at)).where(JobRun.job == "encode")
            )
            last = session.scalar(
                select(func.max(JobRun.finished_at)).where(JobRun.job == "index-write")
            )
            by = dict(
                session.execute(
                    select(JobRun.runner, func.count(JobRun.id))
                    .where(JobRun.job == "encode")
                    .group_by(JobRun.runner)
                ).all()
            )
        engine.dispose()
        assert first is not None and last is not None
        seconds = (last - first).total_seconds()
        log(
            f"  {processes} worker(s), threads {threads or 'all'}: {n / seconds:,.0f} items/s "
            f"({seconds:.1f} s; encode tasks by worker {by})"
        )
        return n / seconds


def task_overhead_ms(base_url: str, tasks: int = 400) -> float:
    """Per no-op task: defer, fetch, run, finish, through the queue and one worker."""
    import procrastinate

    from monitor.worker.tasks import conninfo

    with fresh_schema(base_url) as db_url:
        engine = make_engine(db_url)
        upgrade(engine)
        engine.dispose()
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(db_url)))

        @app.task(name="bench.noop", queue="bench")
        def noop(i: int) -> int:
            return i

        async def measure() -> float:
            async with app.open_async():
                await noop.batch_defer_async(*({"i": i} for i in range(tasks)))
                start = time.perf_counter()
                await app.run_worker_async(
                    queues=["bench"], wait=False, install_signal_handlers=False
                )
                return time.perf_counter() - start

        seconds = asyncio.run(measure())
    return 1000 * seconds / tasks


def ray_rebuild(base_url: str, n: int) -> dict[str, float]:
    """Rebuild throughput: in-process, then on a local Ray, over the same indexed items."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from encoder import load_encoder
    from indexer.pipeline.ray_stage import RayOptions, ray_stage
    from indexer.pipeline.runner import run_ingest
    from simmim.settings import Settings

    with fresh_schema(base_url) as db_url, tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        engine = make_engine(db_url)
        seed_backlog(engine, data_dir, n)
        settings = Settings(
            data_dir=data_dir,
            database={"url": db_url},  # type: ignore[arg-type]
            encoder={"model": "simmim-tiny", "pretrained": "none", "cpu_int8": False},  # type: ignore[arg-type]
        )
        encoder = load_encoder(settings)
        start = time.perf_counter()
        run_ingest(settings, engine, encoder, rebuild=True)
        here = n / (time.perf_counter() - start)
        start = time.perf_counter()
        stage = ray_stage(settings, engine, RayOptions(batch=512))
        run_ingest(settings, engine, encoder, rebuild=True, stage=stage)
        on_ray = n / (time.perf_counter() - start)  # includes starting Ray and its actors
        engine.dispose()
    log(f"  rebuild in-process {here:,.0f} items/s, on local Ray {on_ray:,.0f} items/s")
    return {
        "in_process_items_per_s": round(here, 1),
        "ray_items_per_s": round(on_ray, 1),
        "ratio": round(on_ray / here, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "SIMMIM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()

    log(f"backlog of {args.n:,} items, tiny model, {os.cpu_count()} cores")
    one = run_workers(args.postgres, args.n, 1, threads=1)
    two = run_workers(args.postgres, args.n, 2, threads=1)
    one_all = run_workers(args.postgres, args.n, 1, threads=None)
    overhead = task_overhead_ms(args.postgres)
    log(f"  queue overhead per no-op task: {overhead:.2f} ms")
    result: dict[str, object] = {
        "n": args.n,
        "items_per_s_1": round(one, 1),
        "items_per_s_2": round(two, 1),
        "ratio": round(two / one, 3),
        "task_overhead_ms": round(overhead, 2),
        "items_per_s_1_all_threads": round(one_all, 1),
    }
    if not args.no_ray:
        result["ray"] = ray_rebuild(args.postgres, args.n)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
