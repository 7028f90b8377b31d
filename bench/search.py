"""Search at scale: the index SimMIM chooses for N clustered 512-d vectors, against exact search.

Builds with the project's own chooser and builder (train on a sample, add, tune nprobe to
the recall target), then measures on held-out queries: tie-aware Recall@10 against exact
search, batch throughput against exact search, single-query latency, and the overhead of
our index API (``VectorIndex.search``) over the raw faiss call on the same index and
queries. With ``--db`` it also times the full ``search()`` (index + database hydration of
the results) on a SQLite database holding N items.

With ``--backend faiss|milvus`` it instead runs the store-level comparison in
``bench/search_backends.py`` (FAISS beside the asked-for backend, filtered recall through
``search()``); ``--uri`` picks the Milvus store (default: Milvus Lite in a temp folder),
``--server`` starts a real Milvus standalone server on loopback.

Usage: python bench/search.py [-n 1000000] [--dim 512] [--queries 1000] [--db]
       python bench/search.py --backend milvus --server -n 100000
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.index import build_index
from indexer.index.chooser import choose_index
from indexer.index.manifest import exact_scores_of, recall_at_k
from simmim.settings import Settings


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def clustered(n: int, dim: int, rng: np.random.Generator, clusters: int = 1000) -> np.ndarray:
    """Mixture of Gaussians on the sphere, generated in chunks to bound memory."""
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = centres[rng.integers(0, clusters, m)] + 1.0 * rng.normal(size=(m, dim)).astype(
            np.float32
        )
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def parse_bytes(text: str) -> int:
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    text = text.strip().upper()
    for unit, scale in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * scale)
    return int(text)


def timed(function, repeats: int = 1) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--db", action="store_true", help="also time the full search() with SQLite")
    parser.add_argument(
        "--budget", help="index memory budget, e.g. 8MB or 2GB (default: the settings')"
    )
    parser.add_argument("--backend", choices=["faiss", "milvus"], help="store-level comparison")
    parser.add_argument("--uri", help="Milvus URI (default: Milvus Lite in a temp folder)")
    parser.add_argument("--server", action="store_true", help="start a real Milvus server")
    args = parser.parse_args()
    if args.backend:
        from bench.search_backends import main as backends_main

        backends_main(args, clustered)
        return
    settings = Settings()
    rng = np.random.default_rng(0)

    log(f"generating {args.n} + {args.queries} clustered {args.dim}-d vectors")
    data = clustered(args.n + args.queries, args.dim, rng)
    vectors, queries = data[: args.n], np.ascontiguousarray(data[args.n :])
    ids = np.arange(1, args.n + 1, dtype=np.int64)

    budget = parse_bytes(args.budget) if args.budget else settings.index.memory_budget_mb << 20
    plan = choose_index(args.n, args.dim, budget, settings.index.recall_target)
    log(f"building {plan.factory}")
    start = time.perf_counter()
    index = build_index("fused", plan, ids, vectors, "bench", settings.index.recall_target)
    build_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        index.save(Path(folder))
        index_bytes = (Path(folder) / "fused.faiss").stat().st_size
        originals = Path(folder) / "fused.f16"
        originals_bytes = originals.stat().st_blocks * 512 if originals.is_file() else 0
    log(
        f"  {build_s:.1f}s, nprobe {index.manifest.nprobe}, tuned recall {index.manifest.recall_at_10}"
    )

    log("exact search for ground truth")
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(vectors)
    exact_time = timed(lambda: exact.search(queries, 10))
    exact_scores, _ = exact.search(queries, 10)
    exact.reset()  # free its 4 bytes x n x dim before the timing loops

    raw = index.index  # the very faiss object our API wraps
    # Through our store: with a compressed index that includes the refine step.
    batch_time = timed(lambda: index.search(queries, 10), 3)
    _, approx_ids = index.search(queries, 10)
    # each returned id re-scored exactly on the original vectors: a compressed index's
    # own distances would flatter it
    rescored = exact_scores_of(queries, approx_ids, ids, vectors)
    recall = recall_at_k(exact_scores, -np.sort(-rescored, axis=1))

    log("single queries: raw faiss vs our API")
    singles = [queries[i : i + 1] for i in range(len(queries))]
    raw_lat, api_lat = [], []
    for round_ in range(3):  # interleaved, so drift hits both alike
        for q in singles:
            t0 = time.perf_counter()
            raw.search(q, 10)
            t1 = time.perf_counter()
            index.search(q, 10)
            t2 = time.perf_counter()
            if round_:
                raw_lat.append(t1 - t0)
                api_lat.append(t2 - t1)
    raw_single, api_single = float(np.mean(raw_lat)), float(np.mean(api_lat))
    result: dict[str, object] = {
        "n": args.n,
        "dim": args.dim,
        "factory": plan.factory,
        "nprobe": index.manifest.nprobe,
        "build_s": round(build_s, 1),
        "index_bytes": index_bytes,
        "bytes_ram": index_bytes,  # codes or vectors, ids, centroids: what is loaded
        "bytes_disk": index_bytes + originals_bytes,  # + the float16 originals (by page)
        "estimated_ram": plan.bytes_ram,  # the chooser's estimate, for comparison
        "refine": index.manifest.refine,
        "recall_at_10": round(recall, 4),  # independent: held-out queries, exact ground truth
        "manifest_recall": index.manifest.recall_at_10,  # what the tuner recorded
        "budget_bytes": budget,
        "qps": round(len(queries) / batch_time, 1),
        "exact_qps": round(len(queries) / exact_time, 1),
        "speedup": round(exact_time / batch_time, 1),
        "raw_single_qps": round(1 / raw_single, 1),
        "api_qps": round(1 / api_single, 1),
        "api_overhead": round(api_single / raw_single - 1, 4),
        "p50_ms": round(float(np.percentile(api_lat, 50)) * 1000, 3),
        "p99_ms": round(float(np.percentile(api_lat, 99)) * 1000, 3),
    }
    if args.db:
        result.update(full_search(index, vectors, queries, singles))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


def full_search(index, vectors, queries, singles) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """search() = index + hydrating the k results from the database."""
    from sqlalchemy import insert

    from indexer.index import IndexSet
    from indexer.search import search
    from simmim import migrations
    from simmim.db import make_engine
    from simmim.models import Item, ItemStatus, Source, SourceKind

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder))
        engine = make_engine(settings.database_url)
        migrations.upgrade(engine)
        log(f"inserting {len(vectors)} items into SQLite")
        now = datetime.now(UTC)
        with engine.begin() as connection:
            connection.execute(
                insert(Source), [{"name": "bench", "kind": SourceKind.JSONL, "location": "/x"}]
            )
            for start in range(0, len(vectors), 50_000):
                rows = [
                    {
                        "id": i,
                        "source_id": 1,
                        "title": f"item {i}",
                        "crawled_at": now,
                        "status": ItemStatus.INDEXED,
                        "indexed_spaces": 4,
                    }
                    for i in range(start + 1, min(len(vectors), start + 50_000) + 1)
                ]
                connection.execute(insert(Item), rows)
        indexes = IndexSet(settings, "bench", vectors.shape[1], load=False)
        indexes.spaces["fused"] = index
        latencies = []
        for q in singles[:300]:
            t0 = time.perf_counter()
            search(engine, None, indexes, vector=q[0], space="fused", k=10)
            latencies.append(time.perf_counter() - t0)
        engine.dispose()
    return {
        "search_fn_qps": round(1 / float(np.mean(latencies)), 1),
        "search_fn_p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 3),
    }


if __name__ == "__main__":
    main()
