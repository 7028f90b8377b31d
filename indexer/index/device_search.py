"""Exact search on the GPU with torch, for machines with CUDA but no GPU FAISS.

GPU FAISS does not fit every install (its wheel is too large for many), but torch is
always there when the encoder runs on CUDA. One 140 GB GPU holds 10M x 512 float16
vectors (10 GB) many times over, and a matmul + top-k over all of them is exact, so
recall 1.0 whatever the saved index's type. A single query reads every vector once: at
10M x 512 float16 that is 10 GB, about 2 ms of an H200's memory bandwidth (4.8 TB/s), so
about 450 single queries/s is the ceiling of a full scan; batches share the read. The saved
(CPU) index stays the form on disk and the source of truth; this is a copy on the device,
made on the first search and dropped when the index changes.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

import numpy as np

QUERY_BLOCK_SCORES = 1 << 28  # scores computed at once: 256M (0.5 GB at float16)


@cache
def device_search_available() -> bool:
    """CUDA through torch, in a process that already has torch (the encoder loaded it:
    searching never pays torch's import just to ask)."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_available())


class DeviceExact:
    """Every vector of one space on a torch device: float16 on CUDA, float32 elsewhere
    (the CPU form exists for tests; CPU search keeps FAISS)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, device: Any) -> None:
        import torch

        self.device = torch.device(device)
        dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.dtype = dtype
        self.ids = torch.from_numpy(np.ascontiguousarray(ids, np.int64)).to(self.device)
        self.matrix = torch.from_numpy(np.ascontiguousarray(vectors, np.float32)).to(
            self.device, dtype
        )

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def search(
        self, queries: np.ndarray, k: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) [n, k] by inner product, best first; ids -1 past the end.
        ``among``: only these ids (a filter as an id mask)."""
        import torch

        n = len(queries)
        k = max(1, min(k, len(self))) if len(self) else 1
        scores_out = np.full((n, k), -np.inf, np.float32)
        ids_out = np.full((n, k), -1, np.int64)
        if not len(self) or not n:
            return scores_out, ids_out
        mask = None
        if among is not None:
            wanted = torch.from_numpy(np.ascontiguousarray(among, np.int64)).to(self.device)
            mask = ~torch.isin(self.ids, wanted)
        block = max(1, QUERY_BLOCK_SCORES // len(self))
        with torch.inference_mode():
            q_all = torch.from_numpy(np.ascontiguousarray(queries, np.float32)).to(self.device)
            for start in range(0, n, block):
                q = q_all[start : start + block].to(self.dtype)
                scores = q @ self.matrix.T  # [b, N]
                if mask is not None:
                    scores.masked_fill_(mask, float("-inf"))
                top = torch.topk(scores, k, dim=1)  # sorted, best first; no float32 copy
                best = top.values.float().cpu().numpy()
                found = self.ids[top.indices].cpu().numpy()
                found[~np.isfinite(best)] = -1
                scores_out[start : start + block] = best
                ids_out[start : start + block] = found
        return scores_out, ids_out
