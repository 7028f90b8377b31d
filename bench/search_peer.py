"""bench/search.py's peer under a memory budget: autofaiss, the index builder behind
clip-retrieval, given the same vectors and budget (it picks and tunes its own index).

Run by ``bench/search.py --peer PYTHON`` in the peer's own environment (autofaiss pins
numpy 1.x; keep it apart from ours), which then scores the ids written here against the
exact ground truth exactly as it scores ours. Only numpy, faiss and autofaiss here.

argv: n, dim, queries, budget (autofaiss's notation: 8388608B or 8MB), output folder. Writes
``ids.npy`` (the top 10 per held-out query) and ``peer.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import faiss
import numpy as np
from autofaiss import build_index

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import Corpus

K = 10


def main() -> None:
    n, dim, count, budget, out = (
        int(sys.argv[1]),
        int(sys.argv[2]),
        int(sys.argv[3]),
        sys.argv[4],
        Path(sys.argv[5]),
    )
    corpus = Corpus(n, dim)
    vectors = np.concatenate([corpus.chunk(c)[1] for c in range(corpus.chunks)])
    queries = corpus.queries(count)
    start = time.perf_counter()
    index, infos = build_index(
        vectors,
        save_on_disk=False,
        max_index_memory_usage=budget,
        current_memory_available="8G",
        metric_type="ip",
        min_nearest_neighbors_to_retrieve=K,
        verbose=40,
    )
    build_s = time.perf_counter() - start
    assert index is not None and infos is not None
    _, ids = index.search(queries, K)
    singles = [queries[i : i + 1] for i in range(len(queries))]
    start = time.perf_counter()
    for q in singles:
        index.search(q, K)
    single_s = (time.perf_counter() - start) / len(singles)
    np.save(out / "ids.npy", ids + 1)  # the corpus's ids start at 1; the peer's at 0
    peer = {
        "peer": "autofaiss",
        "peer_factory": infos.get("index_key"),
        "peer_params": infos.get("index_param"),
        "peer_build_s": round(build_s, 1),
        "peer_bytes_ram": len(faiss.serialize_index(index)),
        "peer_qps": round(1 / single_s, 1),
        "peer_p50_ms": round(single_s * 1000, 3),
    }
    (out / "peer.json").write_text(json.dumps(peer))


if __name__ == "__main__":
    main()
