"""The original vectors of a compressed (PQ) index, kept at float16 beside it.

A PQ index cannot give its vectors back: growth, migration and a re-tune would start from
lossy codes, and its scores are approximate. This store keeps each vector at float16
(half of float32, cosine to the original ≥ 0.9999), so search re-ranks the PQ candidates
exactly (the refine step) and every rebuild starts from the real vectors.

Row = item id in a sparse memory-mapped file (``<space>.f16``): no id map in RAM, holes
(ids of other spaces, deleted items) take no disk, and only the rows a search touches are
read. An all-zero row is an absent vector (a real one is unit-length). Until the index is
saved into a folder the rows live in memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from simmim.files import fsync_directory

MAX_ROWS = 1 << 34  # item ids beyond this would make the sparse file absurd


class OriginalVectors:
    def __init__(self, dim: int, path: Path | None = None, *, read_only: bool = False) -> None:
        """``path``: an existing file to map (None: rows in memory until saved)."""
        self.dim = dim
        self.path: Path | None = None  # set while the rows are the file at this path
        self.read_only = read_only
        self._rows: np.ndarray = np.zeros((0, dim), np.float16)
        if path is not None:
            self._open(path)

    def _open(self, path: Path) -> None:
        rows = path.stat().st_size // (2 * self.dim)
        self.path = path
        if rows == 0:
            self._rows = np.zeros((0, self.dim), np.float16)
            return
        self._rows = np.memmap(
            path, dtype=np.float16, mode="r" if self.read_only else "r+", shape=(rows, self.dim)
        )

    @property
    def capacity(self) -> int:
        return int(self._rows.shape[0])

    def _grow(self, rows: int) -> None:
        if rows > MAX_ROWS:
            raise ValueError(f"item id {rows - 1} is too large for the float16 vector store")
        if self.path is None:
            grown = np.zeros((rows, self.dim), np.float16)
            grown[: self.capacity] = self._rows
            self._rows = grown
            return
        if isinstance(self._rows, np.memmap):
            self._rows.flush()
        with open(self.path, "ab") as handle:  # extended as a hole: no disk until written
            handle.truncate(rows * 2 * self.dim)
        self._open(self.path)

    def put(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        top = int(ids.max()) + 1
        if top > self.capacity:
            self._grow(max(top, int(self.capacity * 1.25)))
        self._rows[ids] = vectors.astype(np.float16)

    def remove(self, ids: np.ndarray) -> None:
        inside = ids[(ids >= 0) & (ids < self.capacity)]
        if len(inside):
            self._rows[inside] = 0

    def get(self, ids: np.ndarray) -> np.ndarray:
        """Float32 rows for these ids; zeros where there is none."""
        out = np.zeros((len(ids), self.dim), np.float32)
        inside = (ids >= 0) & (ids < self.capacity)
        if inside.any():
            out[inside] = self._rows[ids[inside]]
        return out

    def save(self, path: Path) -> None:
        """Durable at ``path`` (the index's folder): written there first when the rows were
        in memory or in another folder, flushed and fsynced either way."""
        if self.path != path:
            rows = np.asarray(self._rows)
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "wb") as handle:
                handle.truncate(rows.shape[0] * 2 * self.dim)
                present = np.flatnonzero(np.any(rows != 0, axis=1))
                for start, stop in _runs(present):  # only the rows that exist: holes stay
                    handle.seek(int(start) * 2 * self.dim)
                    handle.write(np.ascontiguousarray(rows[start:stop]).tobytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            fsync_directory(path.parent)
            self.path = path
            self._open(path)
            return
        if isinstance(self._rows, np.memmap):
            self._rows.flush()
        with open(path, "rb+") as handle:  # a file grown but never written is created here
            os.fsync(handle.fileno())

    def disk_bytes(self) -> int:
        """What the file really takes (its holes excluded)."""
        if self.path is None or not self.path.is_file():
            return 0
        return self.path.stat().st_blocks * 512


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive row numbers as [start, stop) runs."""
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[rows[0]], rows[breaks]])
    stops = np.concatenate([rows[breaks - 1] + 1, [rows[-1] + 1]])
    return list(zip(starts.tolist(), stops.tolist(), strict=True))
