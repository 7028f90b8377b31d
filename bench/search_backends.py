"""`bench/search.py --backend faiss|milvus`: the same data and queries through each store.

Both backends run side by side in one process on identical vectors: the FAISS store (the
default) as the reference, and the asked-for backend. Per backend: build (our chooser and
tuner), insert rate, recall@10 against exact search, batched and single-query QPS, the
overhead of our store API over the raw call (faiss ``index.search`` / pymilvus
``client.search`` with the same parameters), and filtered recall@10 through the full
``search()`` (SQL hydration, the widening loop; Milvus applies source and time itself)
at 5 % selectivity (one of 10 sources × half the time range), against exact search over
the matching vectors.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.index import SPACES, Space, VectorMeta
from indexer.index.manifest import exact_scores_of, recall_at_k
from indexer.index.protocol import timestamp
from simmim.settings import Settings

SOURCES = 10
DAYS = 200
START = datetime(2026, 1, 1, tzinfo=UTC)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fields(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    sources = rng.integers(1, SOURCES + 1, n).astype(np.int64)
    seconds = rng.integers(0, DAYS * 86_400, n)
    return sources, seconds


def seed_database(settings: Settings, sources: np.ndarray, seconds: np.ndarray) -> Any:
    from sqlalchemy import insert

    from simmim import migrations
    from simmim.db import make_engine
    from simmim.models import Item, ItemStatus, Source, SourceKind

    engine = make_engine(settings.database_url)
    migrations.upgrade(engine)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(Source),
            [
                {"id": s, "name": f"s{s}", "kind": SourceKind.JSONL, "location": f"/s{s}"}
                for s in range(1, SOURCES + 1)
            ],
        )
        for start in range(0, len(sources), 50_000):
            stop = min(len(sources), start + 50_000)
            connection.execute(
                insert(Item),
                [
                    {
                        "id": i + 1,
                        "source_id": int(sources[i]),
                        "title": f"item {i + 1}",
                        "published_at": START + timedelta(seconds=int(seconds[i])),
                        "crawled_at": now,
                        "status": ItemStatus.INDEXED,
                        "indexed_spaces": sum(s.bit for s in SPACES),
                    }
                    for i in range(start, stop)
                ],
            )
    return engine


def interleaved(
    raw: Callable[[np.ndarray], Any], ours: Callable[[np.ndarray], Any], queries: np.ndarray
) -> tuple[list[float], list[float]]:
    raw_lat, api_lat = [], []
    for round_ in range(3):  # interleaved, so drift hits both alike; round 0 warms up
        for q in queries:
            t0 = time.perf_counter()
            raw(q[None])
            t1 = time.perf_counter()
            ours(q[None])
            t2 = time.perf_counter()
            if round_:
                raw_lat.append(t1 - t0)
                api_lat.append(t2 - t1)
    return raw_lat, api_lat


def run_backend(
    backend: str,
    settings: Settings,
    vectors: np.ndarray,
    queries: np.ndarray,
    meta: VectorMeta,
    exact_scores: np.ndarray,
    filtered: tuple[Any, np.ndarray],
) -> dict[str, Any]:
    from indexer.index import open_stores
    from indexer.search import search

    ids = np.arange(1, len(vectors) + 1, dtype=np.int64)
    rng = np.random.default_rng(1)
    tune_rows = rng.choice(len(ids), size=min(len(ids), 500), replace=False)
    stores: Any = open_stores(settings, "bench", vectors.shape[1], load=False)
    space = Space.FUSED
    log(f"[{backend}] building")
    start = time.perf_counter()
    if backend == "milvus":
        from indexer.index.milvus_store import choose_milvus_index

        plan = choose_milvus_index(len(ids), settings.index.recall_target)
        store = stores.create_collection(space, plan)
        t_add = time.perf_counter()
        store.add(ids, vectors, meta)
        insert_s = time.perf_counter() - t_add
        store.tune(ids, vectors, tune_rows)
        store.manifest.count = len(ids)
        stores.spaces[space] = store
        stores.save([space])  # publishes the manifest, as a real build does
        client, name = store.client, store.name
        params = store.search_params(10)

        def raw(q: np.ndarray) -> Any:
            return client.search(
                name,
                data=list(q),
                limit=10,
                search_params=params,
                output_fields=["id"],
                consistency_level=store.reads,
            )
    else:
        from indexer.index import build_index

        plan = stores.plan(len(ids))
        store = build_index(space, plan, ids, vectors, "bench", settings.index.recall_target)
        insert_s = store_add_time(store, ids, vectors, meta)
        stores.spaces[space] = store
        index = store.index

        def raw(q: np.ndarray) -> Any:
            return index.search(q, 10)

    build_s = time.perf_counter() - start
    log(
        f"[{backend}] {store.manifest.factory}, step {store.manifest.nprobe}, "
        f"tuned recall {store.manifest.recall_at_10}, built in {build_s:.1f}s"
    )

    t0 = time.perf_counter()
    _, found_ids = store.search(queries, 10)
    batch_s = time.perf_counter() - t0
    recall = recall_at_k(exact_scores, rescore(queries, found_ids, vectors))
    raw_lat, api_lat = interleaved(raw, lambda q: store.search(q, 10), queries[:300])

    engine, exact_filtered = filtered
    from indexer.search import SearchFilters

    source = 1
    since, until = START, START + timedelta(days=DAYS // 2)
    found = np.full((len(queries), 10), -np.inf, np.float32)
    t0 = time.perf_counter()
    for row, q in enumerate(queries):
        results = search(
            engine,
            None,
            stores,
            vector=q,
            space="fused",
            k=10,
            filters=SearchFilters(since=since, until=until, source_ids=[source]),
        )
        for col, r in enumerate(results[:10]):
            found[row, col] = float(vectors[r.item_id - 1] @ q)  # re-scored exactly
    filtered_s = time.perf_counter() - t0
    filtered_recall = recall_at_k(exact_filtered, -np.sort(-found, axis=1))
    stores.close()
    raw_single, api_single = float(np.mean(raw_lat)), float(np.mean(api_lat))
    return {
        "backend": backend,
        "factory": store.manifest.factory,
        "search_step": store.manifest.nprobe,
        "manifest_recall": store.manifest.recall_at_10,
        "build_s": round(build_s, 1),
        "insert_per_s": round(len(ids) / insert_s, 1),
        "recall_at_10": round(recall, 4),
        "filtered_recall_at_10": round(filtered_recall, 4),
        "batch_qps": round(len(queries) / batch_s, 1),
        "qps": round(1 / api_single, 1),
        "raw_qps": round(1 / raw_single, 1),
        "api_overhead": round(api_single / raw_single - 1, 4),
        "p50_ms": round(float(np.percentile(api_lat, 50)) * 1000, 3),
        "p99_ms": round(float(np.percentile(api_lat, 99)) * 1000, 3),
        "filtered_search_qps": round(len(queries) / filtered_s, 1),
    }


def rescore(queries: np.ndarray, found: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Each returned id (item id = row + 1) scored exactly on the original vectors, best
    first: a compressed index's own distances would flatter it."""
    ids = np.arange(1, len(vectors) + 1, dtype=np.int64)
    return -np.sort(-exact_scores_of(queries, found, ids, vectors), axis=1)


def store_add_time(store: Any, ids: np.ndarray, vectors: np.ndarray, meta: VectorMeta) -> float:
    """Insert rate of the FAISS store: re-adding into the trained index (remove-then-add)."""
    sample = slice(0, min(len(ids), 20_000))
    t0 = time.perf_counter()
    store.add(ids[sample], vectors[sample])
    return (time.perf_counter() - t0) * len(ids) / len(ids[sample])


def exact_filtered_scores(
    vectors: np.ndarray, queries: np.ndarray, sources: np.ndarray, seconds: np.ndarray
) -> np.ndarray:
    mask = (sources == 1) & (seconds < (DAYS // 2) * 86_400)
    log(f"filter selectivity {mask.mean():.3%}")
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors[mask])
    scores, _ = flat.search(queries, 10)
    return scores


def main(args: Any, clustered: Callable[..., np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    log(f"generating {args.n} + {args.queries} clustered {args.dim}-d vectors")
    data = clustered(args.n + args.queries, args.dim, rng)
    vectors, queries = data[: args.n], np.ascontiguousarray(data[args.n :])
    sources, seconds = fields(args.n, rng)
    ts = np.asarray([timestamp(START + timedelta(seconds=int(s))) for s in seconds], np.int64)
    meta = VectorMeta(sources, ts)
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(vectors)
    exact_scores, _ = exact.search(queries, 10)
    exact.reset()
    exact_filtered = exact_filtered_scores(vectors, queries, sources, seconds)

    server = None
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        uri = args.uri
        try:
            if args.backend == "milvus" and args.server and not uri:
                from tests.milvus_server import start_milvus_server

                log("starting a Milvus standalone server on loopback")
                server, uri = start_milvus_server(base / "milvus-server")
            settings = Settings(data_dir=base / "data", index={"backend": "faiss"})  # type: ignore[arg-type]
            engine = seed_database(settings, sources, seconds)
            results = {
                "faiss": run_backend(
                    "faiss",
                    settings,
                    vectors,
                    queries,
                    meta,
                    exact_scores,
                    (engine, exact_filtered),
                )
            }
            if args.backend == "milvus":
                milvus = Settings(
                    data_dir=base / "data",
                    index={"backend": "milvus", "milvus_uri": uri or str(base / "lite.db")},  # type: ignore[arg-type]
                )
                results["milvus"] = run_backend(
                    "milvus", milvus, vectors, queries, meta, exact_scores, (engine, exact_filtered)
                )
                results["milvus"]["store"] = "server" if uri and "://" in uri else "lite"
            engine.dispose()
        finally:
            if server is not None:
                from tests.milvus_server import stop_milvus_server

                stop_milvus_server(server)
    chosen = results[args.backend]
    line = {"n": args.n, "dim": args.dim, **chosen}
    if args.backend != "faiss":
        line["faiss"] = results["faiss"]
    print(json.dumps(line))
