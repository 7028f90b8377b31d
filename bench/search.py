"""Search at scale: the index SimMIM chooses for N clustered 512-d vectors, against exact search.

Streamed, so N = 10,000,000 runs on one 24 GB machine: the vectors are generated a chunk
at a time (deterministically per chunk, so any chunk can be made again) into a float16
store on disk (the format an index keeps its originals in), and the exact ground truth of
the held-out queries is computed from the float32 chunks in the same pass. The project's
own chooser and builder then build from that store (train on a sample, add chunk by
chunk, tune nprobe and refine to the recall target; a compressed index writes its own
float16 originals to its folder as it goes), and the index is measured on the held-out
queries: tie-aware Recall@10 with every returned id re-scored against its regenerated
float32 vector (independent of the index and of the manifest's figure), batch throughput
against exact search, single-query latency, and the overhead of our index API
(``VectorIndex.search``) over the raw faiss call on the same index and queries. With
``--db`` it also times the full ``search()`` (index + database hydration of the results)
on a SQLite database holding N items.

RAM: ``bytes_ram`` is the index as loaded (codes, ids, centroids, graph);
``rss_anon_peak_mb`` the process's anonymous memory at its highest (sampled every 0.2 s:
training sample, buffers and the index, without the page cache of the mapped float16
files, which the kernel may drop at any time); ``bytes_disk`` the index file plus its
float16 originals.

With ``--backend faiss|milvus`` it instead runs the store-level comparison in
``bench/search_backends.py`` (FAISS beside the asked-for backend, filtered recall through
``search()``); ``--uri`` picks the Milvus store (default: Milvus Lite in a temp folder),
``--server`` starts a real Milvus standalone server on loopback.

Usage: python bench/search.py [-n 1000000] [--dim 512] [--queries 1000] [--db] [--budget 2GB]
       python bench/search.py --backend milvus --server -n 100000
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import CHUNK, Corpus, clustered
from indexer.index import build_index
from indexer.index.chooser import choose_index
from indexer.index.manifest import recall_at_k
from indexer.index.originals import OriginalVectors
from simmim.settings import Settings

K = 10


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class AnonPeak:
    """The process's anonymous RSS (heap, not file pages), sampled in the background."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_kb / 1024, 1)


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


def generate(
    corpus: Corpus, store: OriginalVectors, queries: np.ndarray
) -> tuple[np.ndarray, float]:
    """Write every chunk to the float16 store; the queries' exact top-K scores over the
    float32 chunks (and the time exact search alone took)."""
    best = np.full((len(queries), K), -np.inf, np.float32)
    exact_s = 0.0
    for c in range(corpus.chunks):
        ids, vectors = corpus.chunk(c)
        store.put(ids, vectors)
        t0 = time.perf_counter()  # exact search: one matmul and top-k per chunk
        scores = torch.topk(torch.from_numpy(queries) @ torch.from_numpy(vectors).T, K).values
        exact_s += time.perf_counter() - t0
        best = -np.sort(-np.concatenate([best, scores.numpy()], axis=1), axis=1)[:, :K]
        if c % 10 == 9:
            log(f"  {min((c + 1) * CHUNK, corpus.n):,} vectors")
    return best, exact_s


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
    parser.add_argument("--dir", help="folder for the float16 files (default: a temp folder)")
    parser.add_argument("--backend", choices=["faiss", "milvus"], help="store-level comparison")
    parser.add_argument("--uri", help="Milvus URI (default: Milvus Lite in a temp folder)")
    parser.add_argument("--server", action="store_true", help="start a real Milvus server")
    parser.add_argument(
        "--peer", help="a Python with autofaiss: build its index under the same budget too"
    )
    args = parser.parse_args()
    if args.backend:
        from bench.search_backends import main as backends_main

        backends_main(args, clustered)
        return
    settings = Settings()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        result = run(args, settings, Path(folder))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


def run(args: argparse.Namespace, settings: Settings, folder: Path) -> dict[str, object]:
    memory = AnonPeak()
    corpus = Corpus(args.n, args.dim)
    queries = corpus.queries(args.queries)
    log(f"generating {args.n:,} clustered {args.dim}-d vectors into a float16 store")
    start = time.perf_counter()
    dataset = OriginalVectors.building(args.dim, folder, "dataset")
    dataset.reserve(args.n)
    exact_scores, exact_s = generate(corpus, dataset, queries)
    log(f"  {time.perf_counter() - start:.0f}s (exact search of the queries: {exact_s:.0f}s)")
    ids = np.arange(1, args.n + 1, dtype=np.int64)

    budget = parse_bytes(args.budget) if args.budget else settings.index.memory_budget_mb << 20
    plan = choose_index(args.n, args.dim, budget, settings.index.recall_target)
    log(f"building {plan.factory} from the float16 store")
    start = time.perf_counter()
    index_folder = folder / "index"
    index = build_index(
        "fused", plan, ids, dataset, "bench", settings.index.recall_target, folder=index_folder
    )
    build_s = time.perf_counter() - start
    dataset.discard()  # as on a user's machine, only the index's own float16 file stays
    index.save(index_folder)
    index_bytes = (index_folder / "fused.faiss").stat().st_size
    originals_bytes = index.originals.disk_bytes() if index.originals is not None else 0
    log(
        f"  {build_s:.1f}s, nprobe {index.manifest.nprobe}, refine {index.manifest.refine}, "
        f"tuned recall {index.manifest.recall_at_10}"
    )

    raw = index.index  # the very faiss object our API wraps
    # Through our store: with a compressed index that includes the refine step.
    batch_time = timed(lambda: index.search(queries, K), 3)
    _, approx_ids = index.search(queries, K)
    log("independent check: returned ids re-scored on their regenerated float32 vectors")
    recall = independent_recall(corpus, queries, exact_scores, approx_ids)

    log("single queries: raw faiss vs our API")
    singles = [queries[i : i + 1] for i in range(len(queries))]
    raw_lat, api_lat = [], []
    for round_ in range(3):  # interleaved, so drift hits both alike
        for q in singles:
            t0 = time.perf_counter()
            raw.search(q, K)
            t1 = time.perf_counter()
            index.search(q, K)
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
        "bytes_ram": index_bytes,  # codes or vectors, ids, centroids, graph: what is loaded
        "bytes_disk": index_bytes + originals_bytes,  # + the float16 originals (by page)
        "estimated_ram": plan.bytes_ram,  # the chooser's estimate, for comparison
        "refine": index.manifest.refine,
        "recall_at_10": round(recall, 4),  # independent: held-out queries, exact ground truth
        "manifest_recall": index.manifest.recall_at_10,  # what the tuner recorded
        "budget_bytes": budget,
        "qps": round(len(queries) / batch_time, 1),
        "exact_qps": round(len(queries) / exact_s, 1),
        "speedup": round(exact_s / batch_time, 1),
        "raw_single_qps": round(1 / raw_single, 1),
        "api_qps": round(1 / api_single, 1),
        "api_overhead": round(api_single / raw_single - 1, 4),
        "p50_ms": round(float(np.percentile(api_lat, 50)) * 1000, 3),
        "p99_ms": round(float(np.percentile(api_lat, 99)) * 1000, 3),
    }
    if args.db:
        result.update(full_search(index, args.n, args.dim, singles))
    result["rss_anon_peak_mb"] = memory.stop()
    if args.peer:
        result.update(peer(args.peer, budget, corpus, queries, exact_scores, folder))
    return result


def independent_recall(
    corpus: Corpus, queries: np.ndarray, exact_scores: np.ndarray, found: np.ndarray
) -> float:
    """Tie-aware recall@K of returned ids (ids 1..N; ≤ 0 is none), each re-scored on its
    regenerated float32 vector: nothing the index says about its own scores is used."""
    rows = corpus.exact_rows(found.reshape(-1)).reshape(*found.shape, -1)
    rescored = np.einsum("qd,qkd->qk", queries, rows)
    rescored[found <= 0] = -np.inf
    return recall_at_k(exact_scores, -np.sort(-rescored, axis=1))


def peer(
    python: str,
    budget: int,
    corpus: Corpus,
    queries: np.ndarray,
    exact_scores: np.ndarray,
    folder: Path,
) -> dict[str, object]:
    """autofaiss under the same budget (bench/search_peer.py in its own environment); its
    ids re-scored on their regenerated vectors, as ours are."""
    log("the peer: autofaiss under the same budget")
    out = folder / "peer"
    out.mkdir()
    script = Path(__file__).resolve().parent / "search_peer.py"
    command = [python, str(script), str(corpus.n), str(corpus.dim), str(len(queries))]
    subprocess.run([*command, f"{budget}B", str(out)], check=True)  # ours, to the byte
    result: dict[str, object] = json.loads((out / "peer.json").read_text())
    found = np.load(out / "ids.npy")
    result["peer_recall_at_10"] = round(independent_recall(corpus, queries, exact_scores, found), 4)
    return result


def full_search(index, n: int, dim: int, singles) -> dict[str, float]:  # type: ignore[no-untyped-def]
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
        log(f"inserting {n} items into SQLite")
        now = datetime.now(UTC)
        with engine.begin() as connection:
            connection.execute(
                insert(Source), [{"name": "bench", "kind": SourceKind.JSONL, "location": "/x"}]
            )
            for start in range(0, n, 50_000):
                rows = [
                    {
                        "id": i,
                        "source_id": 1,
                        "title": f"item {i}",
                        "crawled_at": now,
                        "status": ItemStatus.INDEXED,
                        "indexed_spaces": 4,
                    }
                    for i in range(start + 1, min(n, start + 50_000) + 1)
                ]
                connection.execute(insert(Item), rows)
        indexes = IndexSet(settings, "bench", dim, load=False)
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
