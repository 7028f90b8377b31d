"""Which FAISS index fits a corpus: a pure function of its size, the memory budget and recall.

- up to FLAT_MAX vectors: exact search (``IDMap2,Flat``), nothing to tune;
- larger, when raw vectors fit the budget: ``IVF{nlist},Flat`` (exact distances inside
  the probed lists; ``nprobe`` tuned to the recall target);
- when they do not: ``IVF{nlist},PQ{m}``, with m (bytes per vector) as large as the
  budget allows, since recall grows with it.

HNSW is not offered: it cannot delete vectors, and deleted items must leave the index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLAT_MAX = 20_000
FLAT_MAX_HIGH_RECALL = 200_000  # a recall target above 0.99 keeps exact search longer
BYTES_PER_ID = 8
IVF_OVERHEAD = 1.1  # inverted-list slack, centroids, direct map


@dataclass(frozen=True)
class IndexPlan:
    factory: str
    kind: str  # "flat" or "ivf"
    nlist: int = 0
    pq_bytes: int = 0


def ivf_lists(count: int) -> int:
    """About 4·√n lists, a power of two, at least 64 and at most 65536."""
    target = 4 * math.sqrt(max(count, 1))
    return int(min(65536, max(64, 2 ** round(math.log2(target)))))


def choose_index(
    count: int, dim: int, memory_budget_bytes: int, recall_target: float = 0.95
) -> IndexPlan:
    if count < 0 or dim <= 0 or memory_budget_bytes <= 0:
        raise ValueError(f"bad sizes: count={count}, dim={dim}, budget={memory_budget_bytes}")
    raw = count * (dim * 4 + BYTES_PER_ID)
    flat_max = FLAT_MAX_HIGH_RECALL if recall_target > 0.99 else FLAT_MAX
    if count <= flat_max and raw <= memory_budget_bytes:
        return IndexPlan("IDMap2,Flat", "flat")
    nlist = ivf_lists(count)
    if raw * IVF_OVERHEAD <= memory_budget_bytes:
        return IndexPlan(f"IVF{nlist},Flat", "ivf", nlist)
    per_vector = memory_budget_bytes / max(count, 1) / IVF_OVERHEAD - BYTES_PER_ID
    choices = [
        m
        for m in (8, 16, 32, 48, 64, 96, 128, 192, 256)
        if m <= per_vector and dim % m == 0 and m <= dim
    ]
    if not choices:
        raise ValueError(
            f"{count} vectors of {dim} dims cannot fit {memory_budget_bytes} bytes even at 8 bytes each; "
            "raise SIMMIM_INDEX__MEMORY_BUDGET_MB"
        )
    m = choices[-1]
    return IndexPlan(f"IVF{nlist},PQ{m}", "ivf", nlist, m)
