"""What every vector store offers, whatever keeps the vectors (FAISS files, Milvus).

Shaped by how the rest of the system uses an index: the ingest writer adds, removes and
makes durable ("save, then mark"); reconcile lists ids; search asks for the top k, with the
item's source and time as optional filters the store may evaluate itself; scoring and
collapse read stored vectors back; ``index status`` shows a manifest.

A *store* is one space's vectors; a *store set* is the three spaces for one model
fingerprint, plus the set-level steps (durability, growth, rebuild beside and swap).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, Self

import numpy as np

from indexer.index.manifest import Manifest
from simmim.models import Space

NO_TIME = -(2**62)  # published_ts of an item without a date: outside every time filter


def timestamp(when: datetime | None) -> int:
    """Seconds since the epoch (naive datetimes are UTC, as the database stores them)."""
    if when is None:
        return NO_TIME
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


@dataclass(frozen=True)
class VectorMeta:
    """Per-vector fields a store may keep beside the vector for filtering (aligned with ids)."""

    source_ids: np.ndarray  # int64
    published_ts: np.ndarray  # int64 seconds, NO_TIME when unknown

    @classmethod
    def empty(cls, n: int) -> VectorMeta:
        return cls(np.zeros(n, np.int64), np.full(n, NO_TIME, np.int64))

    @classmethod
    def lookup(cls, fields: Mapping[int, tuple[int, int]], ids: Sequence[int]) -> VectorMeta:
        """The (source, time) of each id from ``fields``; unknown ids get none of either."""
        pairs = [fields.get(int(i), (0, NO_TIME)) for i in ids]
        return cls(
            np.asarray([p[0] for p in pairs], np.int64), np.asarray([p[1] for p in pairs], np.int64)
        )


@dataclass(frozen=True)
class FieldFilter:
    """Source and time restrictions a store can apply inside its own search."""

    since: datetime | None = None
    until: datetime | None = None
    source_ids: Sequence[int] = ()

    def __bool__(self) -> bool:
        return self.since is not None or self.until is not None or bool(self.source_ids)


class VectorStore(Protocol):
    """One space's vectors; vector id = item id."""

    manifest: Manifest
    filters_fields: bool  # search() applies a FieldFilter itself
    max_k: int  # the most results one search may ask for

    @property
    def count(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray, meta: VectorMeta | None = None) -> None:
        """Add or replace: an id already present is replaced, never duplicated."""

    def remove(self, ids: np.ndarray) -> int:
        """Remove these ids; returns how many were present."""

    def ids(self) -> np.ndarray: ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors by id, in the order asked (every id must be stored)."""

    def search(
        self,
        queries: np.ndarray,
        k: int,
        where: FieldFilter | None = None,
        *,
        widen: float = 1.0,
        among: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) [n, k] by inner product; ids are -1 past the end. ``widen`` > 1
        looks further (more IVF lists, a larger HNSW beam) for a filtered search: with a
        fraction s of vectors passing, 1/s keeps the candidates per query as unfiltered.
        ``among`` (an id filter) searches only those ids, exactly."""

    def exhaustive(self, widen: float = 1.0) -> bool:
        """Whether a search at this widening sees every vector (fewer hits means no more)."""


class StoreSet(Protocol):
    """The three spaces' stores for one model fingerprint."""

    backend: str
    fingerprint: str
    dim: int
    spaces: dict[Space, Any]  # Space → VectorStore | None

    def get(self, space: Space) -> VectorStore:
        """The space's store, created empty when there is none yet."""

    def save(self, spaces: Iterable[Space] = ...) -> None:
        """Make what was added durable (the writer marks items only after this)."""

    def grow_if_needed(self, space: Space) -> bool:
        """Re-index a space whose size outgrew its index type; True when it did."""

    def start_rebuild(self, expected: int = 0) -> Self:
        """An empty set beside the live one; search keeps reading the live one.
        ``expected``: about how many vectors a space will get (sizes what it stages in)."""

    def finish_rebuild(self, staging: Self) -> None:
        """Make the rebuilt set the live one in one swap; the old one is removed after."""

    def close(self) -> None: ...
