"""bench/api.py's baseline: search() on the bench's index by N threads at once; p50 ms.

Run by bench/api.py in a child process (argv: repo, data dir, queries .npy, threads)."""

from __future__ import annotations

import json
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import numpy as np


def main() -> None:
    from indexer.index import open_stores
    from indexer.search import search
    from simmim.db import make_engine
    from simmim.settings import Settings

    data_dir, queries_file, threads = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    settings = Settings(data_dir=data_dir)
    queries = np.load(queries_file)
    engine = make_engine(settings.database_url)
    times: list[float] = []
    with closing(
        open_stores(settings, "bench/synthetic", queries.shape[1], read_only=True)
    ) as stores:
        for query in queries[:20]:
            search(engine, None, stores, vector=query, space="text", k=10)

        def caller(offset: int) -> None:
            for n in range(len(queries)):
                query = queries[(n + offset) % len(queries)]
                started = time.perf_counter()
                search(engine, None, stores, vector=query, space="text", k=10)
                times.append(time.perf_counter() - started)

        workers = [threading.Thread(target=caller, args=(i * 7,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    engine.dispose()
    print(json.dumps({"threads": threads, "p50_ms": 1000 * float(np.percentile(times, 50))}))


if __name__ == "__main__":
    main()
