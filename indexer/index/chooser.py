"""Which FAISS index fits a corpus: a pure function of its size, the memory budget and recall.

- up to FLAT_MAX vectors: exact search (``IDMap2,Flat``), nothing to tune;
- larger, when raw vectors fit the budget: ``IVF{nlist},Flat`` (exact distances inside
  the probed lists; ``nprobe`` tuned to the recall target);
- when they do not: ``IVF{nlist},PQ{2m}x4fs``, m bytes per vector as large as the
  budget allows, since recall grows with it, and the vectors kept at float16 on disk for
  the refine step (``indexer.index.originals``). The codes are 4-bit "fast-scan" ones
  (2m sub-quantizers of 16 centroids, scanned with SIMD table lookups held in registers):
  on 1M clustered 512-d vectors, 128 bytes each, they scan 5–7× faster than 8-bit
  ``PQ128`` and train 8× faster; their coarser ranking costs a larger refine factor,
  which the tuner picks, and a query is still 1.2–3.4× cheaper (bench/README.md).

The size estimates count what the process holds: codes or vectors, ids, centroids, PQ
codebooks and (uncompressed IVF) the id map; the float16 originals are disk, read by page.

HNSW is not offered as the index: it cannot delete vectors, and deleted items must leave
the index. From MANY_LISTS lists on it is the coarse quantizer (``IVF{nlist}_HNSW32``):
the graph is over centroids, which are never deleted, and finding the probed lists no
longer scans every centroid (16,384 × 512-d: 32 MB read per query).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLAT_MAX = 20_000
FLAT_MAX_HIGH_RECALL = 200_000  # a recall target above 0.99 keeps exact search longer
BYTES_PER_ID = 8  # an id beside each vector or code
HASH_MAP_BYTES = 48  # the id → list direct map of an uncompressed IVF (std::unordered_map)
IVF_SLACK = 1.05  # inverted lists grow by doubling
PQ_CHOICES = (8, 16, 32, 48, 64, 96, 128, 192, 256)
MANY_LISTS = 8192  # from here: HNSW coarse quantizer, centroids trained in two levels
HNSW_LINKS = 32  # neighbours per centroid in that graph
FAST_SCAN_BLOCK = 32  # fast-scan lists are stored in blocks of 32 codes
CENTROID_SHARE = 0.1  # a compressed index spends at most this share of its budget on centroids


@dataclass(frozen=True)
class IndexPlan:
    factory: str
    kind: str  # "flat" or "ivf"
    nlist: int = 0
    pq_bytes: int = 0
    bytes_ram: int = 0  # estimated: vectors or codes, ids, centroids, codebooks, maps
    bytes_disk: int = 0  # the index file, plus a compressed index's float16 originals


def ivf_lists(count: int) -> int:
    """About 4·√n lists, a power of two, at least 64 and at most 65536."""
    target = 4 * math.sqrt(max(count, 1))
    return int(min(65536, max(64, 2 ** round(math.log2(target)))))


def coarse(nlist: int) -> str:
    """The factory's IVF part: a flat quantizer, or an HNSW graph over many centroids."""
    return f"IVF{nlist}_HNSW{HNSW_LINKS}" if nlist >= MANY_LISTS else f"IVF{nlist}"


def centroid_bytes(nlist: int, dim: int) -> int:
    """Centroids, plus the HNSW graph's links (level 0 has 2·M; upper levels ~1/M more)."""
    links = nlist * 2 * HNSW_LINKS * 4 * 1.1 if nlist >= MANY_LISTS else 0
    return int(nlist * dim * 4 + links)


def flat_bytes(count: int, dim: int) -> int:
    return count * (dim * 4 + BYTES_PER_ID)


def ivf_flat_bytes(count: int, dim: int, nlist: int) -> int:
    per_vector = (dim * 4 + BYTES_PER_ID) * IVF_SLACK + HASH_MAP_BYTES
    return int(count * per_vector + centroid_bytes(nlist, dim))


def ivf_pq_bytes(count: int, dim: int, nlist: int, m: int) -> int:
    """m bytes of 4-bit codes per vector; each list's last block of 32 may be part empty."""
    codebooks = 16 * dim * 4  # 2m sub-quantizers of 16 centroids over dim/2m dims
    padding = nlist * FAST_SCAN_BLOCK * m
    return int(
        count * (m + BYTES_PER_ID) * IVF_SLACK + padding + centroid_bytes(nlist, dim) + codebooks
    )


def pq_factory(m: int) -> str:
    """m bytes per vector as 2m 4-bit sub-quantizers, fast-scan layout."""
    return f"PQ{2 * m}x4fs"


def choose_index(
    count: int, dim: int, memory_budget_bytes: int, recall_target: float = 0.95
) -> IndexPlan:
    if count < 0 or dim <= 0 or memory_budget_bytes <= 0:
        raise ValueError(f"bad sizes: count={count}, dim={dim}, budget={memory_budget_bytes}")
    raw = flat_bytes(count, dim)
    flat_max = FLAT_MAX_HIGH_RECALL if recall_target > 0.99 else FLAT_MAX
    if count <= flat_max and raw <= memory_budget_bytes:
        return IndexPlan("IDMap2,Flat", "flat", bytes_ram=raw, bytes_disk=raw)
    nlist = ivf_lists(count)
    ivf = ivf_flat_bytes(count, dim, nlist)
    if ivf <= memory_budget_bytes:
        return IndexPlan(f"{coarse(nlist)},Flat", "ivf", nlist, bytes_ram=ivf, bytes_disk=ivf)
    # Compressed: fewer lists when their centroids would eat the budget; the codes as
    # large as what is left allows (recall grows with them); the refine step re-ranks
    # candidates from the float16 originals on disk.
    while nlist > 64 and centroid_bytes(nlist, dim) > CENTROID_SHARE * memory_budget_bytes:
        nlist //= 2
    fits = [
        m
        for m in PQ_CHOICES
        if dim % (2 * m) == 0 and ivf_pq_bytes(count, dim, nlist, m) <= memory_budget_bytes
    ]
    if not fits:
        raise ValueError(
            f"{count} vectors of {dim} dims cannot fit {memory_budget_bytes} bytes even at "
            f"{PQ_CHOICES[0]} bytes each; raise SIMMIM_INDEX__MEMORY_BUDGET_MB"
        )
    m = fits[-1]
    ram = ivf_pq_bytes(count, dim, nlist, m)
    return IndexPlan(
        f"{coarse(nlist)},{pq_factory(m)}",
        "ivf",
        nlist,
        m,
        bytes_ram=ram,
        bytes_disk=ram + count * dim * 2,
    )
