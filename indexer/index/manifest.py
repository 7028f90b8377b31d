"""What a built index is (manifest), how its recall is scored, and the error for a bad one.

Shared by every store: the FAISS files keep the manifest as JSON beside the index, the
Milvus store in its own small collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import faiss
import numpy as np

from simmim.clock import utcnow
from simmim.errors import SimmimError


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


def exact_neighbour_scores(
    ids: np.ndarray, vectors: np.ndarray, query_ids: np.ndarray, queries: np.ndarray, k: int
) -> np.ndarray:
    """Exact top-k scores of stored queries among the stored vectors, each query's own entry
    left out: the ground truth both stores tune against."""
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    exact.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    found_scores, found_ids = exact.search(np.ascontiguousarray(queries, dtype=np.float32), k + 1)
    return without_self(found_scores, found_ids, query_ids, k)


def exact_scores_of(
    queries: np.ndarray, found: np.ndarray, ids: np.ndarray, vectors: np.ndarray
) -> np.ndarray:
    """The exact score of each returned id (rows of ``vectors``, keyed by ``ids``), -inf for
    the -1 padding: recall judged by these cannot be flattered by an index's own distances."""
    order = np.argsort(ids)
    at = np.clip(np.searchsorted(ids[order], found), 0, len(ids) - 1)
    scores = np.einsum("qd,qkd->qk", queries, vectors[order[at]])
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
