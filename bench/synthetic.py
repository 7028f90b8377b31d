"""The search benches' synthetic corpus: clustered unit vectors, numpy only.

Numpy only so a peer's bench (bench/search_peer.py, run in the peer's own environment)
makes the very same vectors and held-out queries as ours.
"""

from __future__ import annotations

import numpy as np

CHUNK = 100_000
CLUSTERS = 1000


def clustered(n: int, dim: int, rng: np.random.Generator, clusters: int = CLUSTERS) -> np.ndarray:
    """Mixture of Gaussians on the sphere, in memory (the store-level comparison's data)."""
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        out[start : start + m] = _around(centres, rng, m)
    return out


def _around(centres: np.ndarray, rng: np.random.Generator, m: int) -> np.ndarray:
    x = centres[rng.integers(0, len(centres), m)]
    x += rng.standard_normal(size=(m, centres.shape[1]), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Corpus:
    """N clustered vectors (ids 1..N) made chunk by chunk; chunk c is the same every time."""

    def __init__(self, n: int, dim: int, seed: int = 0) -> None:
        self.n, self.dim, self.seed = n, dim, seed
        self.centres = np.random.default_rng(seed).normal(size=(CLUSTERS, dim)).astype(np.float32)

    def chunk(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        start = c * CHUNK
        m = min(CHUNK, self.n - start)
        rng = np.random.default_rng([self.seed, 1, c])
        return np.arange(start + 1, start + m + 1, dtype=np.int64), _around(self.centres, rng, m)

    @property
    def chunks(self) -> int:
        return -(-self.n // CHUNK)

    def queries(self, count: int) -> np.ndarray:
        """Held out: drawn from the same clusters, never stored."""
        return _around(self.centres, np.random.default_rng([self.seed, 2]), count)

    def exact_rows(self, ids: np.ndarray) -> np.ndarray:
        """The float32 vectors of these ids, made again (only the chunks that hold them)."""
        out = np.zeros((len(ids), self.dim), np.float32)
        chunk_of = (ids - 1) // CHUNK
        for c in np.unique(chunk_of[ids > 0]):
            chunk_ids, vectors = self.chunk(int(c))
            wanted = chunk_of == c
            out[wanted] = vectors[ids[wanted] - chunk_ids[0]]
        return out
