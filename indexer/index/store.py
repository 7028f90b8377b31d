"""One FAISS index per space, with ids that are item ids and a JSON manifest beside it.

The manifest records what was built (factory string, nprobe), for which model
fingerprint, how many vectors, the recall measured against exact search, and the file's
checksum. Files are written to a temp name, fsynced and renamed, index first and manifest
last, so a crash leaves the previous pair or the new one, never half of each.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.index.chooser import IndexPlan
from indexer.index.manifest import (
    IndexFileError,
    Manifest,
    dimension_mismatch,
    exact_neighbour_scores,
    exact_scores_of,
    model_mismatch,
    recall_at_k,
    without_self,
)
from indexer.index.protocol import FieldFilter, VectorMeta
from simmim.files import atomic_write_bytes, file_checksum
from simmim.models import SPACES

log = logging.getLogger(__name__)
NPROBE_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


def gpu_count() -> int:
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def _ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    try:
        return faiss.downcast_index(faiss.extract_index_ivf(index))
    except RuntimeError:
        return None


class VectorIndex:
    """The FAISS store: one index in memory, saved to a file with its manifest."""

    filters_fields = False  # source/time filters are applied in SQL by search's widening loop
    max_k = 1 << 30

    def __init__(self, index: faiss.Index, manifest: Manifest) -> None:
        self.index = index
        self.manifest = manifest
        self._gpu: faiss.Index | None = None
        ivf = _ivf(index)
        self._ivf = ivf  # kept: search widens its nprobe without looking it up again
        if ivf is not None:
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
            ivf.nprobe = max(1, manifest.nprobe)

    @classmethod
    def create(
        cls, space: str, plan: IndexPlan, dim: int, fingerprint: str, recall_target: float
    ) -> VectorIndex:
        index = faiss.index_factory(dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
        manifest = Manifest(
            space, plan.factory, plan.kind, dim, fingerprint, recall_target=recall_target
        )
        return cls(index, manifest)

    # ---- contents

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def train(self, sample: np.ndarray) -> None:
        if self.index.is_trained:
            return
        ivf = self._ivf
        if isinstance(ivf, faiss.IndexIVFPQ):
            ivf.do_polysemous_training = False  # minutes of training for a filter we never use
        if ivf is not None and gpu_count():
            ivf.clustering_index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatL2(ivf.d))
        self.index.train(np.ascontiguousarray(sample, dtype=np.float32))

    def add(self, ids: np.ndarray, vectors: np.ndarray, meta: VectorMeta | None = None) -> None:
        """Add or replace: ids already present are removed first, so a re-add never duplicates."""
        if not len(ids):
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.remove(ids)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self._gpu = None

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids) or not self.count:
            return 0
        removed = int(self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))
        self._gpu = None
        return removed

    def ids(self) -> np.ndarray:
        if isinstance(self.index, faiss.IndexIDMap2 | faiss.IndexIDMap):
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        ivf = self._ivf
        assert ivf is not None, f"unsupported index {type(self.index).__name__}"
        invlists = ivf.invlists
        parts = [
            faiss.rev_swig_ptr(invlists.get_ids(lst), invlists.list_size(lst)).copy()
            for lst in range(ivf.nlist)
            if invlists.list_size(lst)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors by id (exact for Flat and IVF-Flat; approximate for PQ)."""
        if not len(ids):
            return np.zeros((0, self.manifest.dim), np.float32)
        return self.index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))

    # ---- search

    def search(
        self,
        queries: np.ndarray,
        k: int,
        where: FieldFilter | None = None,
        *,
        widen: float = 1.0,
        among: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) [n, k]; ids are -1 past the end. ``widen`` multiplies nprobe (a
        filtered search probes more lists); ``among`` limits the search to these ids, every
        list probed; ``where`` must be empty: this store keeps no fields."""
        if where:
            raise ValueError("the FAISS store cannot filter by field; filter in SQL")
        k = max(1, min(k, self.count)) if self.count else 1
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if among is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(among, dtype=np.int64))
            params: faiss.SearchParameters = (
                faiss.SearchParametersIVF(sel=selector, nprobe=self._ivf.nlist)
                if self._ivf is not None
                else faiss.SearchParameters(sel=selector)
            )
            return self.index.search(queries, k, params=params)
        if widen > 1 and self._ivf is not None:
            nprobe = math.ceil(min(self._ivf.nlist, self._ivf.nprobe * widen))
            return self.index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
        target = self.index
        if gpu_count():
            if self._gpu is None:
                self._gpu = faiss.index_cpu_to_all_gpus(self.index)
            target = self._gpu
        return target.search(queries, k)

    def exhaustive(self, widen: float = 1.0) -> bool:
        """Whether a search at this widening sees every vector (so fewer hits = no more)."""
        return self._ivf is None or self._ivf.nprobe * widen >= self._ivf.nlist

    def tune(
        self,
        query_ids: np.ndarray,
        recall_target: float,
        k: int = 10,
        *,
        originals: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Smallest nprobe whose tie-aware Recall@k against exact search meets the target.

        Queries are stored vectors; each one's own entry is left out of both result
        lists, so recall measures finding the neighbours, not finding the query itself.
        Every returned id is re-scored exactly, and with ``originals`` (ids, vectors: what
        a build was given) queries and ground truth are the original vectors, so a
        compressed index (PQ) cannot hide what compression lost. Without them the stored
        vectors stand in, lossy for PQ, and the manifest's ``recall_basis`` says so.
        """
        ivf = self._ivf
        if ivf is None or not self.count:
            self.manifest.nprobe, self.manifest.recall_at_10 = 0, 1.0
            self.manifest.recall_basis = "exact index"
            return
        k = min(k, self.count - 1)
        if originals is not None:
            ids, base = originals
            self.manifest.recall_basis = "original vectors"
        else:
            ids = self.ids()
            base = self.vectors(ids)
            self.manifest.recall_basis = (
                "reconstructed vectors (lossy: PQ)" if self.manifest.lossy else "stored vectors"
            )
        queries = np.ascontiguousarray(base[np.isin(ids, query_ids)], dtype=np.float32)
        query_ids = ids[np.isin(ids, query_ids)]
        exact_scores = exact_neighbour_scores(ids, base, query_ids, queries, k)
        recall = 0.0
        for nprobe in (n for n in NPROBE_STEPS if n <= ivf.nlist):
            ivf.nprobe = nprobe
            _, found_ids = self.index.search(queries, k + 1)
            rescored = exact_scores_of(queries, found_ids, ids, base)
            scores = without_self(rescored, found_ids, query_ids, k)
            recall = recall_at_k(exact_scores, scores, k)
            if recall >= recall_target:
                break
        self.manifest.nprobe, self.manifest.recall_at_10 = int(ivf.nprobe), round(recall, 4)
        log.info("%s: nprobe %d gives recall@%d %.3f", self.manifest.space, ivf.nprobe, k, recall)

    # ---- files

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        index_path, manifest_path = paths(folder, self.manifest.space)
        self.manifest.count = self.count
        data = faiss.serialize_index(self.index)  # hashed as written: no second read
        self.manifest.checksum = hashlib.sha256(data).hexdigest()
        atomic_write_bytes(index_path, memoryview(data))
        text = json.dumps(asdict(self.manifest), indent=2).encode()
        atomic_write_bytes(manifest_path, text)

    @classmethod
    def load(
        cls,
        folder: Path,
        space: str,
        fingerprint: str,
        *,
        read_only: bool = False,
        dim: int | None = None,
    ) -> VectorIndex | None:
        """The saved index, or None when there is none. A model mismatch is an error."""
        index_path, manifest_path = paths(folder, space)
        if not manifest_path.is_file() or not index_path.is_file():
            return None
        try:
            manifest = Manifest.from_dict(json.loads(manifest_path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise IndexFileError(
                f"index manifest {manifest_path} is damaged: {exc}",
                hint="run `simmim index --rebuild`",
            ) from exc
        if manifest.fingerprint != fingerprint:
            raise model_mismatch(space, manifest.fingerprint, fingerprint)
        if dim is not None and manifest.dim != dim:
            raise dimension_mismatch(space, manifest.dim, dim)
        if not read_only:  # one read: the bytes that are checked are the bytes loaded
            data = index_path.read_bytes()
            _require_checksum(index_path, manifest, hashlib.sha256(data).hexdigest())
            try:
                index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
            except RuntimeError as exc:
                raise _damaged(index_path, exc) from exc
            return cls(index, manifest)
        _require_checksum(
            index_path, manifest, file_checksum(index_path) if manifest.checksum else ""
        )
        try:
            index = faiss.read_index(str(index_path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError:
            try:
                index = faiss.read_index(str(index_path))  # types that cannot be mapped
            except RuntimeError as exc:
                raise _damaged(index_path, exc) from exc
        return cls(index, manifest)


def _require_checksum(index_path: Path, manifest: Manifest, actual: str) -> None:
    if manifest.checksum and actual != manifest.checksum:
        raise IndexFileError(
            f"index file {index_path} is damaged: its checksum does not match the one "
            "recorded when it was saved",
            hint="re-encode it with `simmim index --rebuild` (search keeps failing until then)",
        )


def _damaged(index_path: Path, exc: Exception) -> IndexFileError:
    return IndexFileError(
        f"index file {index_path} is damaged: {exc}", hint="run `simmim index --rebuild`"
    )


def paths(folder: Path, space: str) -> tuple[Path, Path]:
    return folder / f"{space}.faiss", folder / f"{space}.json"


def built_manifests(folder: Path, *, verify: bool = False) -> dict[str, dict[str, Any]]:
    """What `index status`, the dashboard and the demo show: each built space's manifest as
    plain data, plus ``bytes`` (the index file's size; None when the file is missing) and,
    with ``verify`` (reads every file), ``health``: "ok", or what is wrong and the fix."""
    out: dict[str, dict[str, Any]] = {}
    for space in SPACES:
        index_path, manifest_path = paths(folder, space)
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            manifest["bytes"] = index_path.stat().st_size if index_path.is_file() else None
            if verify:
                manifest["health"] = _health(index_path, manifest)
            out[space] = manifest
    return out


def _health(index_path: Path, manifest: dict[str, Any]) -> str:
    if not index_path.is_file():
        return "file missing: run `simmim index` (it re-queues what the index lacked)"
    if manifest.get("checksum") and file_checksum(index_path) != manifest["checksum"]:
        return "DAMAGED (checksum mismatch): run `simmim index --rebuild`"
    return "ok"
