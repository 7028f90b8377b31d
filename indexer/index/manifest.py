"""What a built index is (manifest), how its recall is scored, and the error for a bad one.

Shared by every store: the FAISS files keep the manifest as JSON beside the index, the
Milvus store in its own small collection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from simmim.clock import utcnow
from simmim.errors import SimmimError

EXACT_CHUNK = 1 << 18  # stored vectors scored at once by the exact search (512 MB at 512-d)


class IndexFileError(SimmimError):
    """An index is missing, damaged or belongs to another model."""


@dataclass
class Manifest:
    space: str
    factory: str
    kind: str
    dim: int
    fingerprint: str
    count: int = 0
    nprobe: int = 0  # FAISS/Milvus IVF lists probed; Milvus HNSW: ef
    recall_at_10: float | None = None  # measured against exact search when built
    recall_basis: str = ""  # what that exact search ran over (original or stored vectors)
    recall_target: float = 0.95
    checksum: str = ""
    built_at: str = field(default_factory=lambda: utcnow().isoformat(timespec="seconds"))
    backend: str = "faiss"
    collection: str = ""  # Milvus: the collection holding this space's vectors
    originals: str = ""  # "float16": a compressed index keeps its vectors beside it
    refine: int = 0  # PQ + originals: k×refine candidates re-ranked exactly (0: none)
    originals_bytes: int = 0  # the float16 file's size when saved: a cut file is found

    @property
    def compressed(self) -> bool:
        """PQ codes: approximate scores, vectors not recoverable from the index itself."""
        return "PQ" in self.factory

    @property
    def lossy(self) -> bool:
        """The index cannot give its vectors back (PQ without the float16 originals)."""
        return self.compressed and not self.originals

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Fields this version knows; others (written by a newer version) are ignored, so
        processes of two versions can share indexes during an upgrade."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    @classmethod
    def parse(cls, raw: bytes, where: object) -> Manifest:
        """A saved manifest, or an IndexFileError that says what is wrong with it: empty,
        cut, not UTF-8, not an object, a required field missing or of the wrong type."""
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise damaged_manifest(where, "not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise damaged_manifest(
                where, "empty" if not raw.strip() else f"not JSON ({exc})"
            ) from None
        if not isinstance(data, dict):
            raise damaged_manifest(where, f"a JSON {type(data).__name__}, not an object")
        missing = [name for name in REQUIRED if name not in data]
        if missing:
            raise damaged_manifest(where, f"no {', '.join(missing)}")
        wrong = [
            f.name
            for f in fields(cls)
            if f.name in data and not _fits(data[f.name], _TYPES.get(f.name, str))
        ]
        if wrong:
            raise damaged_manifest(where, f"{', '.join(wrong)} of the wrong type")
        return cls.from_dict(data)


REQUIRED = ("space", "factory", "kind", "dim", "fingerprint")
_TYPES: dict[str, type | tuple[type, ...]] = {
    "dim": int,
    "count": int,
    "nprobe": int,
    "refine": int,
    "originals_bytes": int,
    "recall_at_10": (int, float, type(None)),
    "recall_target": (int, float),
}


def _fits(value: object, kind: type | tuple[type, ...]) -> bool:
    return isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)


def damaged_manifest(where: object, what: str) -> IndexFileError:
    return IndexFileError(
        f"index manifest {where} is damaged ({what})",
        hint="run `simmim index --rebuild`: it re-encodes every item into a new index set "
        "and never reads the damaged one",
    )


def model_mismatch(space: str, built_with: str, now: str) -> IndexFileError:
    return IndexFileError(
        f"the {space} index was built with model {built_with}, but the encoder is now {now}",
        hint="re-encode everything with `simmim index --rebuild` (or restore the old model settings)",
    )


def dimension_mismatch(space: str, stored: int, now: int) -> IndexFileError:
    return IndexFileError(
        f"the {space} index holds {stored}-d vectors, but the encoder makes {now}-d vectors",
        hint="re-encode everything with `simmim index --rebuild`",
    )


def without_self(scores: np.ndarray, ids: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
    """Scores of the top k results other than the query's own entry (-inf pads)."""
    masked = np.where(ids == query_ids[:, None], -np.inf, scores)
    return -np.sort(-masked, axis=1)[:, :k]


class VectorRows(Protocol):
    """Where original vectors are read from by id: an array in memory (``ArrayVectors``),
    the float16 store on disk, or an index that can give its vectors back."""

    @property
    def dim(self) -> int: ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Float32 rows for these ids (zeros for an id it does not hold)."""
        ...


class ArrayVectors:
    """Rows of an in-memory array, keyed by the ids they belong to."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]
        self._vectors = vectors

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        if not len(self._sorted):
            return np.zeros((len(ids), self._vectors.shape[1]), np.float32)
        at = np.clip(np.searchsorted(self._sorted, ids), 0, len(self._sorted) - 1)
        out = np.asarray(self._vectors[self._order[at]], dtype=np.float32)
        out[self._sorted[at] != ids] = 0
        return out


def as_rows(ids: np.ndarray, vectors: np.ndarray | VectorRows) -> VectorRows:
    return ArrayVectors(ids, vectors) if isinstance(vectors, np.ndarray) else vectors


def exact_neighbour_scores(
    ids: np.ndarray,
    vectors: np.ndarray | VectorRows,
    query_ids: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    chunk: int | None = None,
) -> np.ndarray:
    """Exact top-k scores of the queries among the stored vectors, each query's own entry
    left out: the ground truth both stores tune against. The stored vectors are read
    ``chunk`` ids at a time, so 10M of them never sit in RAM at float32."""
    import torch  # matmul + topk: 4× faiss's flat search with its heaps at this size

    chunk = chunk or EXACT_CHUNK
    rows = as_rows(ids, vectors)
    query_block = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    best_scores = np.full((len(queries), k + 1), -np.inf, np.float32)
    best_ids = np.full((len(queries), k + 1), -1, np.int64)
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        block = torch.from_numpy(np.ascontiguousarray(rows.vectors(part), dtype=np.float32))
        top = torch.topk(query_block @ block.T, min(k + 1, len(part)), dim=1)
        found_scores, found_ids = top.values.numpy(), part[top.indices.numpy()]
        scores = np.concatenate([best_scores, found_scores], axis=1)
        merged = np.concatenate([best_ids, found_ids], axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, : k + 1]
        best_scores = np.take_along_axis(scores, order, axis=1)
        best_ids = np.take_along_axis(merged, order, axis=1)
    return without_self(best_scores, best_ids, query_ids, k)


def exact_scores_of(
    queries: np.ndarray, found: np.ndarray, ids: np.ndarray, vectors: np.ndarray | VectorRows
) -> np.ndarray:
    """The exact score of each returned id (its original vector, from ``vectors`` keyed by
    ``ids``), -inf for the -1 padding: recall judged by these cannot be flattered by an
    index's own distances."""
    flat = found.reshape(-1)
    found_vectors = np.zeros((len(flat), queries.shape[1]), np.float32)
    found_vectors[flat >= 0] = as_rows(ids, vectors).vectors(flat[flat >= 0])
    scores = np.einsum("qd,qkd->qk", queries, found_vectors.reshape(*found.shape, -1))
    scores[found < 0] = -np.inf
    return scores


def recall_at_k(
    exact_scores: np.ndarray, approx_scores: np.ndarray, k: int = 10, eps: float = 1e-5
) -> float:
    """Tie-aware Recall@k from scores alone.

    With t the k-th exact score, an approximate result scoring above t is surely a true
    neighbour; results scoring t (ties) count up to the number of top-k places the exact
    list leaves for score t.
    """
    t = exact_scores[:, k - 1 : k]
    approx = approx_scores[:, :k]
    above = (approx > t + eps).sum(axis=1)
    tied = (np.abs(approx - t) <= eps).sum(axis=1)
    room = k - (exact_scores[:, :k] > t + eps).sum(axis=1)
    return float((above + np.minimum(tied, room)).mean() / k)
