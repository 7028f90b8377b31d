"""The HTTP API under load (Locust, headless, loopback), against search() in-process.

    python bench/api.py [-n 100000] [--dim 512] [--seconds 20] [--workers 1]

Builds n synthetic indexed items (the index type the chooser picks for n), starts
`simmim serve` on a free loopback port, and drives POST /v1/search with a query vector
(so the model is not what is measured) from Locust users at 1, 16 and 64 concurrent
users. The baseline, in the same process and on the same queries: `indexer.search.search`
called directly. ``overhead_p50_ms`` is the API's p50 minus search()'s p50.

Progress on stderr; the last stdout line is one JSON object: rps, p50_ms, p99_ms, errors,
overhead_p50_ms (16 users) and the same inside users_64 and users_1.
"""

from __future__ import annotations

# Locust patches the standard library (gevent) when imported: first, before anything else.
from locust import FastHttpUser, constant, events, task  # isort: skip
from locust.env import Environment  # isort: skip

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import gevent
import numpy as np

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from app.api.tokens import Scope, create_token  # noqa: E402
from indexer.index import VectorMeta, open_stores  # noqa: E402
from simmim.db import make_engine, session_factory, session_scope  # noqa: E402
from simmim.migrations import upgrade  # noqa: E402
from simmim.models import Item, ItemStatus, Source, SourceKind, Space  # noqa: E402
from simmim.settings import Settings  # noqa: E402
from tests.processes import terminate  # noqa: E402

SIMMIM = str(Path(sys.executable).parent / "simmim")
FINGERPRINT = "bench/synthetic"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def build_corpus(settings: Settings, n: int, dim: int) -> tuple[np.ndarray, str]:
    """n indexed items with clustered vectors in the text space; returns queries and a token."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(1000, dim))
    vectors = unit(centres[rng.integers(0, 1000, n)] + 0.35 * rng.normal(size=(n, dim)))
    engine = make_engine(settings.database_url)
    upgrade(engine)
    with session_scope(session_factory(engine)) as session:
        source = Source(name="wire", kind=SourceKind.RSS, location="http://x/wire", enabled=False)
        session.add(source)
        session.flush()
        source_id = source.id
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for start in range(0, n, 10_000):
            connection.execute(
                insert(Item),
                [
                    {
                        "id": i + 1,
                        "source_id": source_id,
                        "title": f"headline {i + 1}",
                        "url": f"https://x.example/{i + 1}",
                        "status": ItemStatus.INDEXED,
                        "indexed_spaces": Space.TEXT.bit,
                        "crawled_at": now,
                        "published_at": now,
                    }
                    for i in range(start, min(start + 10_000, n))
                ],
            )
    ids = np.arange(1, n + 1, dtype=np.int64)
    with closing(open_stores(settings, FINGERPRINT, dim)) as stores:
        stores.get(Space.TEXT).add(
            ids, vectors, VectorMeta(np.full(n, source_id, np.int64), np.zeros(n, np.int64))
        )
        stores.grow_if_needed(Space.TEXT)
        stores.save()
    _, token = create_token(engine, "bench", Scope.READ)
    engine.dispose()
    queries = unit(vectors[rng.choice(n, 200, replace=False)] + 0.2 * rng.normal(size=(200, dim)))
    return queries, token


def in_process_p50(data_dir: Path, queries_file: Path, threads: int) -> float:
    """search() p50 with ``threads`` callers at once, in a fresh process: this one runs
    under gevent (Locust), whose patched threads are greenlets."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "from bench.search_baseline import main; main()"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(Path(__file__).resolve().parent.parent),
            str(data_dir),
            str(queries_file),
            str(threads),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["p50_ms"])


def serve(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [SIMMIM, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                if reply.status == 200:
                    return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("simmim serve did not come up within 120 s")


def load(
    host: str, token: str, bodies: list[bytes], users: int, seconds: float
) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    class Searcher(FastHttpUser):
        wait_time = constant(0)

        @task
        def vector_search(self) -> None:
            body = bodies[np.random.randint(len(bodies))]
            with self.client.post(
                "/v1/search", data=body, headers=headers, catch_response=True
            ) as reply:
                if reply.status_code != 200:
                    reply.failure(f"status {reply.status_code}")

    environment = Environment(user_classes=[Searcher], host=host, events=events)
    runner = environment.create_local_runner()
    runner.start(users, spawn_rate=users)
    gevent.sleep(2)  # ramp and warm
    environment.stats.reset_all()
    gevent.sleep(seconds)
    total = environment.stats.total
    result = {
        "users": users,
        "rps": round(total.total_rps, 1),
        "p50_ms": round(total.get_response_time_percentile(0.5), 2),
        "p99_ms": round(total.get_response_time_percentile(0.99), 2),
        "errors": int(total.num_failures),
        "requests": int(total.num_requests),
    }
    runner.quit()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn processes")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        settings = Settings(data_dir=data_dir)
        log(f"building {args.n:,} indexed items ({args.dim}-d) …")
        queries, token = build_corpus(settings, args.n, args.dim)
        bodies = [
            json.dumps({"vector": q.tolist(), "space": "text", "k": 10}).encode() for q in queries
        ]
        queries_file = Path(tmp) / "queries.npy"
        np.save(queries_file, queries)
        direct = {users: in_process_p50(data_dir, queries_file, users) for users in (1, 16, 64)}
        log(
            "search() in-process p50: "
            + ", ".join(f"{ms:.2f} ms at {users}" for users, ms in direct.items())
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIMMIM_")}
        env.update(
            {
                "SIMMIM_DATA_DIR": str(data_dir),
                "SIMMIM_ENCODER__MODEL": "simmim-tiny",  # not used by vector queries
                "SIMMIM_ENCODER__PRETRAINED": "none",
                "SIMMIM_LOG_LEVEL": "WARNING",
                "OMP_NUM_THREADS": "1",  # one query per request: FAISS threads only contend
            }
        )
        port = free_port()
        server = serve(env, port, args.workers)
        try:
            host = f"http://127.0.0.1:{port}"
            levels = {}
            for users in (1, 16, 64):
                found = load(host, token, bodies, users, args.seconds)
                found["search_p50_ms_in_process"] = round(direct[users], 2)
                found["overhead_p50_ms"] = round(found["p50_ms"] - direct[users], 2)
                levels[users] = found
                log(
                    f"  {users:>2} users: {found['rps']:,.0f} req/s, p50 {found['p50_ms']} ms, "
                    f"p99 {found['p99_ms']} ms, errors {found['errors']}"
                )
        finally:
            terminate([server], timeout=30)
    top = levels[16]
    print(
        json.dumps(
            {
                "n": args.n,
                "search_p50_ms_in_process": round(direct[16], 2),
                **{k: top[k] for k in ("rps", "p50_ms", "p99_ms", "errors", "overhead_p50_ms")},
                "users_64": levels[64],
                "users_1": levels[1],
            }
        )
    )


if __name__ == "__main__":
    main()
