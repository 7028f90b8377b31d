"""The original vectors of a compressed (PQ) index, kept at float16 beside it.

A PQ index cannot give its vectors back: growth, migration and a re-tune would start from
lossy codes, and its scores are approximate. This store keeps each vector at float16
(half of float32, cosine to the original ≥ 0.9999), so search re-ranks the PQ candidates
exactly (the refine step) and every rebuild starts from the real vectors.

Row = item id in a sparse memory-mapped file (``<space>.f16``): no id map in RAM, holes
(ids of other spaces, deleted items) take no disk, and only the rows a search touches are
read. An all-zero row is an absent vector (a real one is unit-length). An index built into
a folder maps its rows from the start (``building``: a temp file there, renamed into place
by its save), so a 10M-vector build never holds them in RAM; otherwise the rows live in
memory until the index is first saved.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from simmim.files import TEMP_PREFIX, fsync_directory

log = logging.getLogger(__name__)

MAX_ROWS = 1 << 34  # item ids beyond this would make the sparse file absurd
COPY_ROWS = 1 << 18  # rows read at once when a store is copied into another folder
SCAN_ROWS = 1 << 16  # rows checked at once by a scan (64 MB at 512-d)
UNIT_TOLERANCE = 0.01  # float16 rounding moves a unit vector's norm by < 0.001


class OriginalVectors:
    def __init__(self, dim: int, path: Path | None = None, *, read_only: bool = False) -> None:
        """``path``: an existing file to map (None: rows in memory until saved)."""
        self.dim = dim
        self.path: Path | None = None  # set while the rows are the file at this path
        self.read_only = read_only
        self._rows: np.ndarray = np.zeros((0, dim), np.float16)
        self._map: np.memmap | None = None  # the file's mapping; _rows is a plain view of it
        self._temp = False  # the file is this store's own temp file (renamed by save)
        if path is not None:
            self._open(path)

    @classmethod
    def building(cls, dim: int, folder: Path, space: str) -> OriginalVectors:
        """An empty store whose rows are a temp file in ``folder`` from the first one on:
        its save renames it into place (nothing copied); a crash leaves a temp file that
        the next index run sweeps."""
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=f"{TEMP_PREFIX}{space}.f16.")
        os.close(fd)
        store = cls(dim, Path(name))
        store._temp = True
        return store

    def _open(self, path: Path) -> None:
        rows = path.stat().st_size // (2 * self.dim)
        self.path = path
        self._map = None
        if rows == 0:
            self._rows = np.zeros((0, self.dim), np.float16)
            return
        self._map = np.memmap(
            path, dtype=np.float16, mode="r" if self.read_only else "r+", shape=(rows, self.dim)
        )
        # Indexed through a plain ndarray over the same pages: np.memmap's subclass hooks
        # cost 6× the copy itself when the refine step reads a few hundred rows per query.
        self._rows = self._map.view(np.ndarray)

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
        if self._map is not None:
            self._map.flush()
        with open(self.path, "ab") as handle:  # extended as a hole: no disk until written
            handle.truncate(rows * 2 * self.dim)
        self._open(self.path)

    def reserve(self, top_id: int) -> None:
        """Room for ids up to ``top_id`` at once (a build knows them all: no regrowth)."""
        if top_id + 1 > self.capacity:
            self._grow(top_id + 1)

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

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Float32 rows for these ids; zeros where there is none, and where a row is damaged
        (not finite, or not unit-length: a flipped byte in the file) — it is logged, never
        scored as a cosine of 22 or NaN."""
        return self.present_vectors(ids)[0]

    def present_vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``vectors(ids)`` and which of them are there (sound and not a hole), from one
        look at each row: the refine step ranks only those."""
        inside = (ids >= 0) & (ids < self.capacity)
        everywhere = bool(inside.all())
        rows = _widen(self._rows.take(ids if everywhere else ids[inside], axis=0))
        norms = _norms(rows)
        bad = _unsound(norms)
        if bad.any():
            log.warning(
                "%d damaged float16 vector(s) in %s left out of the results: "
                "run `simmim index --rebuild`",
                int(bad.sum()),
                self.path,
            )
            rows[bad] = 0
        sound = (norms > 0) & ~bad
        if everywhere:
            return rows, sound
        out = np.zeros((len(ids), self.dim), np.float32)
        out[inside] = rows
        present = np.zeros(len(ids), bool)
        present[inside] = sound
        return out, present

    def damaged_rows(self) -> int:
        """How many rows are damaged, reading the whole file a block at a time."""
        return sum(  # a copy per block: the mapping may be read-only, torch wants to own it
            int(_unsound(_norms(_widen(np.array(self._rows[start : start + SCAN_ROWS])))).sum())
            for start in range(0, self.capacity, SCAN_ROWS)
        )

    def save(self, path: Path) -> None:
        """Durable at ``path`` (the index's folder): written there first when the rows were
        in memory or in another folder, renamed there when they are this store's temp file
        in that folder, flushed and fsynced either way."""
        if self._temp and self.path is not None and self.path.parent == path.parent:
            self._flush_file()
            os.replace(self.path, path)
            fsync_directory(path.parent)
            self._temp = False
            self._open(path)
            return
        if self.path != path:
            rows, previous = self._rows, self.path if self._temp else None
            tmp = path.with_name(f"{TEMP_PREFIX}{path.name}")
            with open(tmp, "wb") as handle:
                handle.truncate(rows.shape[0] * 2 * self.dim)
                for block in range(0, rows.shape[0], COPY_ROWS):  # bounded RAM at any size
                    part = np.asarray(rows[block : block + COPY_ROWS])
                    present = np.flatnonzero(np.any(part != 0, axis=1))
                    for start, stop in _runs(present):  # only the rows that exist: holes stay
                        handle.seek((block + int(start)) * 2 * self.dim)
                        handle.write(np.ascontiguousarray(part[start:stop]).tobytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            fsync_directory(path.parent)
            self.path = path
            self._temp = False
            self._open(path)
            if previous is not None:
                previous.unlink(missing_ok=True)
            return
        self._flush_file()

    def _flush_file(self) -> None:
        assert self.path is not None
        if self._map is not None:
            self._map.flush()
        with open(self.path, "rb+") as handle:  # a file grown but never written is created here
            os.fsync(handle.fileno())

    def discard(self) -> None:
        """Delete this store's own temp file (a staged space's rows, once an index was built
        from them); a saved file is left for the save that replaces it."""
        if self._temp and self.path is not None:
            self._rows, self._map = np.zeros((0, self.dim), np.float16), None
            self.path.unlink(missing_ok=True)
            self.path, self._temp = None, False

    def disk_bytes(self) -> int:
        """What the file really takes (its holes excluded)."""
        if self.path is None or not self.path.is_file():
            return 0
        return self.path.stat().st_blocks * 512


def _norms(rows: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.sqrt(np.einsum("ij,ij->i", rows, rows))


def _unsound(norms: np.ndarray) -> np.ndarray:
    """Rows that are neither absent (norm 0) nor unit-length within float16's rounding
    (NaN and inf norms included)."""
    return ~((norms == 0) | (np.abs(norms - 1) <= UNIT_TOLERANCE))


def _widen(rows: np.ndarray) -> np.ndarray:
    """float16 → float32. numpy converts element by element (0.6 ms for the 320 rows a
    refine reads, more than the rest of a search); torch's vectorised cast is 24× faster."""
    import torch  # imported on first use: the index package loads without it

    return torch.from_numpy(rows).float().numpy()


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive row numbers as [start, stop) runs."""
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[rows[0]], rows[breaks]])
    stops = np.concatenate([rows[breaks - 1] + 1, [rows[-1] + 1]])
    return list(zip(starts.tolist(), stops.tolist(), strict=True))
