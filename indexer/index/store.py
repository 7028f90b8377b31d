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

from indexer.index.chooser import HNSW_LINKS, MANY_LISTS, IndexPlan
from indexer.index.device_search import DeviceExact, device_search_available
from indexer.index.manifest import (
    IndexFileError,
    Manifest,
    VectorRows,
    as_rows,
    dimension_mismatch,
    exact_neighbour_scores,
    exact_scores_of,
    model_mismatch,
    recall_at_k,
    without_self,
)
from indexer.index.originals import OriginalVectors
from indexer.index.protocol import FieldFilter, VectorMeta
from simmim.files import atomic_write_bytes, file_checksum
from simmim.models import SPACES

log = logging.getLogger(__name__)
CODE_TRAINING_POINTS = 256 * 256  # what faiss's PQ training samples down to anyway
PLATEAU = 0.002  # two doublings of nprobe that gain less: the codes, not the lists, limit recall
REFINE_STEPS = (0, 2, 4, 8, 16, 32, 64, 128, 256)  # candidates re-ranked: k × R (0: none)
BEAM_PER_PROBE = 4  # HNSW beam per list probed: ≥ 0.94 of the true nearest lists
RERANK_FLOATS = 1 << 25  # candidate vector floats the refine step holds at once (128 MB)
NPROBE_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


def gpu_count() -> int:
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def beam(nprobe: int) -> int:
    """HNSW's search beam for finding the nprobe nearest centroids: at its default (16) a
    search for 64 of 16,384 centroids returns only ~75 % of the true nearest, and the
    lists it misses hold neighbours no refine can recover (recall stuck at 0.82 at 10M)."""
    return max(16, BEAM_PER_PROBE * nprobe)


def two_level_centroids(sample: np.ndarray, nlist: int) -> np.ndarray:
    """``nlist`` k-means centroids: √nlist clusters, then each split in proportion to its
    size (faiss.contrib's two-level clustering, as faiss trains its billion-scale IVFs)."""
    from faiss.contrib.clustering import two_level_clustering

    first = 1 << (int(math.log2(nlist)) // 2)
    centroids, _ = two_level_clustering(sample, first, nlist, clustering_niter=10)
    return np.ascontiguousarray(centroids, dtype=np.float32)


def _ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    try:
        return faiss.downcast_index(faiss.extract_index_ivf(index))
    except RuntimeError:
        return None


class VectorIndex:
    """The FAISS store: one index in memory, saved to a file with its manifest."""

    filters_fields = False  # source/time filters are applied in SQL by search's widening loop
    max_k = 1 << 30

    def __init__(
        self, index: faiss.Index, manifest: Manifest, originals: OriginalVectors | None = None
    ) -> None:
        self.index = index
        self.manifest = manifest
        self.originals = originals  # a compressed index's float16 vectors (refine, rebuilds)
        self._gpu: faiss.Index | None = None
        self._device: DeviceExact | None = None  # every vector on CUDA, without GPU FAISS
        self._waiting: list[np.ndarray] = []  # ids in the originals, for an untrained index
        ivf = _ivf(index)
        self._ivf = ivf  # kept: search widens its nprobe without looking it up again
        self._graph: faiss.IndexHNSW | None = None  # an HNSW coarse quantizer's
        self._centroids: faiss.Index | None = None  # its storage, scanned for many lists
        if ivf is not None:
            quantizer = faiss.downcast_index(ivf.quantizer)
            if isinstance(quantizer, faiss.IndexHNSW):
                self._graph = quantizer
                self._centroids = faiss.downcast_index(quantizer.storage)
        if ivf is not None:
            if not (manifest.compressed and manifest.originals):
                # reconstruct and remove by id; a compressed index has its originals for
                # the first and scans its lists for the second: a hash table would cost
                # more RAM per vector than its codes
                ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
            self._probe(max(1, manifest.nprobe))

    @classmethod
    def create(
        cls,
        space: str,
        plan: IndexPlan,
        dim: int,
        fingerprint: str,
        recall_target: float,
        *,
        folder: Path | None = None,
    ) -> VectorIndex:
        """``folder``: where the index will be saved; a compressed one's float16 vectors
        are then written there as they come (memory-mapped), not held in RAM until saved."""
        index = faiss.index_factory(dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
        manifest = Manifest(
            space, plan.factory, plan.kind, dim, fingerprint, recall_target=recall_target
        )
        originals = None
        if manifest.compressed:
            originals = (
                OriginalVectors.building(dim, folder, space)
                if folder is not None
                else OriginalVectors(dim)
            )
            manifest.originals = "float16"
        return cls(index, manifest, originals)

    def _probe(self, nprobe: int) -> None:
        """Probe ``nprobe`` lists; an HNSW quantizer gets the beam to find them."""
        assert self._ivf is not None
        self._ivf.nprobe = nprobe
        if self._graph is not None:
            self._graph.hnsw.efSearch = beam(nprobe)

    # ---- contents

    @staticmethod
    def stages_untrained(plan: IndexPlan) -> bool:
        """Whether an index of this plan can take vectors before it is trained: a compressed
        one keeps them in its float16 originals until ``build_index`` trains and fills it."""
        return "PQ" in plan.factory

    @property
    def trained(self) -> bool:
        return bool(self.index.is_trained)

    @property
    def count(self) -> int:
        if not self.trained and self.originals is not None:
            return len(self._waiting_ids())
        return int(self.index.ntotal)

    def _waiting_ids(self) -> np.ndarray:
        if len(self._waiting) != 1:  # kept merged: count and ids are asked more than once
            merged = np.concatenate(self._waiting) if self._waiting else np.zeros(0, np.int64)
            self._waiting = [np.unique(merged)]
        return self._waiting[0]

    @property
    def dim(self) -> int:
        return self.manifest.dim

    def train(self, sample: np.ndarray) -> None:
        if self.index.is_trained:
            return
        ivf = self._ivf
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        if isinstance(ivf, faiss.IndexIVFPQ):
            ivf.do_polysemous_training = False  # minutes of training for a filter we never use
        if ivf is not None and gpu_count():
            ivf.clustering_index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatL2(ivf.d))
        elif ivf is not None and ivf.nlist >= MANY_LISTS:
            # Flat k-means costs sample × nlist × dim per iteration (hours for 16k lists on
            # two cores); two levels of √nlist cost ~√nlist times less. With the quantizer
            # filled, faiss trains only the codes (on residuals, which want far fewer points).
            ivf.quantizer.add(two_level_centroids(sample, ivf.nlist))
            sample = sample[:CODE_TRAINING_POINTS]
        self.index.train(sample)

    def add(self, ids: np.ndarray, vectors: np.ndarray, meta: VectorMeta | None = None) -> None:
        """Add or replace: an id already present is replaced, so a re-add never duplicates."""
        if not len(ids):
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not self.trained and self.originals is not None:
            self.originals.put(ids, vectors)  # waits there for build_index (a rebuild)
            self._waiting.append(ids)
            return
        if self.count:
            self.index.remove_ids(ids)  # the float16 rows are simply overwritten below
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index.add_with_ids(vectors, ids)
        if self.originals is not None:
            self.originals.put(ids, vectors)
        self._gpu = None
        self._device = None

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids) or not self.count:
            return 0
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not self.trained and self.originals is not None:
            waiting = self._waiting_ids()
            gone = np.isin(waiting, ids)
            self._waiting = [waiting[~gone]]
            self.originals.remove(ids[np.isin(ids, waiting)])
            return int(gone.sum())
        removed = int(self.index.remove_ids(ids))
        if self.originals is not None:
            self.originals.remove(ids)
        self._gpu = None
        self._device = None
        return removed

    def ids(self) -> np.ndarray:
        if not self.trained and self.originals is not None:
            return self._waiting_ids().copy()
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
        """Stored vectors by id: exact for Flat and IVF-Flat, the float16 originals for a
        compressed index that keeps them, the decoded codes (lossy) for one that does not."""
        if not len(ids):
            return np.zeros((0, self.manifest.dim), np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self.originals is not None:
            return self.originals.vectors(ids)
        return self.index.reconstruct_batch(ids)

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
        if self.originals is not None and self.manifest.refine > 1:
            wide = min(self.count, k * self.manifest.refine)
            _, ids = self._approximate(queries, wide, widen=widen, among=among)
            return self._rerank(queries, ids, k)
        return self._approximate(queries, k, widen=widen, among=among)

    def _rerank(
        self, queries: np.ndarray, candidates: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The refine step: candidates re-scored by exact inner product with the float16
        originals (only their rows are read), best k kept."""
        assert self.originals is not None
        scores = np.empty(candidates.shape, np.float32)
        # A block of queries at a time: 1,000 queries × 2,560 candidates × 512-d at float32
        # would be 5 GB at once.
        block = max(1, RERANK_FLOATS // max(1, candidates.shape[1] * queries.shape[1]))
        for start in range(0, len(queries), block):
            part = candidates[start : start + block]
            rows, present = self.originals.present_vectors(part.reshape(-1))
            vectors = rows.reshape(*part.shape, -1)
            part_queries = queries[start : start + block, :, None]
            scores[start : start + block] = np.matmul(vectors, part_queries)[:, :, 0]
            # No row (a hole, or one found damaged and dropped): no score to rank by.
            scores[start : start + block][~present.reshape(part.shape)] = -np.inf
        scores[candidates < 0] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(scores, order, axis=1).astype(np.float32)
        ids = np.take_along_axis(candidates, order, axis=1)
        ids[~np.isfinite(best)] = -1
        return best, ids

    def _approximate(
        self,
        queries: np.ndarray,
        k: int,
        *,
        widen: float = 1.0,
        among: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.trained and device_search_available() and not gpu_count():
            if self._device is None:
                ids = self.ids()
                self._device = DeviceExact(ids, self.vectors(ids), "cuda")
            return self._device.search(queries, k, among)
        if among is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(among, dtype=np.int64))
            if self._ivf is None:
                return self.index.search(queries, k, params=faiss.SearchParameters(sel=selector))
            return self._probing(queries, k, self._ivf.nlist, selector)
        if widen > 1 and self._ivf is not None:
            nprobe = math.ceil(min(self._ivf.nlist, self._ivf.nprobe * widen))
            return self._probing(queries, k, nprobe)
        nprobe = self._ivf.nprobe if self._ivf is not None else 0
        if self._scans_centroids(nprobe) and not gpu_count():
            return self._preassigned(queries, k, nprobe)
        target = self.index
        if gpu_count():
            if self._gpu is None:
                self._gpu = faiss.index_cpu_to_all_gpus(self.index)
            target = self._gpu
        return target.search(queries, k)

    def _probing(
        self, queries: np.ndarray, k: int, nprobe: int, selector: faiss.IDSelector | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One search at another nprobe (and id filter), the index's own settings untouched."""
        if self._scans_centroids(nprobe):
            return self._preassigned(queries, k, nprobe, selector)
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if selector is not None:
            params.sel = selector
        # a local, not an inline temporary: params keeps only a raw pointer to it
        graph = faiss.SearchParametersHNSW(efSearch=beam(nprobe))
        if self._graph is not None:
            params.quantizer_params = graph
        return self.index.search(queries, k, params=params)

    def _scans_centroids(self, nprobe: int) -> bool:
        """Whether the lists to probe are cheaper found by scanning every centroid than by
        walking the HNSW graph: its beam visits about beam × links of them, and past nlist
        a flat scan wins (16,384 × 512-d, one query: 3.2 ms scanned vs 10 ms walked for
        1,024 lists; 2.7 vs 2.4 ms for 128)."""
        return (
            self._centroids is not None
            and self._ivf is not None
            and beam(nprobe) * HNSW_LINKS > self._ivf.nlist
        )

    def _preassigned(
        self, queries: np.ndarray, k: int, nprobe: int, selector: faiss.IDSelector | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """IVF search in the lists a flat scan of the graph's own centroid storage found."""
        assert self._centroids is not None and self._ivf is not None
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        centroid_scores, lists = self._centroids.search(queries, nprobe)
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if selector is not None:
            params.sel = selector
        scores = np.empty((len(queries), k), np.float32)
        ids = np.empty((len(queries), k), np.int64)
        # the C++ call: faiss's Python wrapper of search_preassigned refuses search params
        self._ivf.search_preassigned_c(
            len(queries),
            faiss.swig_ptr(queries),
            k,
            faiss.swig_ptr(lists),
            faiss.swig_ptr(centroid_scores),
            faiss.swig_ptr(scores),
            faiss.swig_ptr(ids),
            False,
            params,
        )
        return scores, ids

    def exhaustive(self, widen: float = 1.0) -> bool:
        """Whether a search at this widening sees every vector (so fewer hits = no more)."""
        return self._ivf is None or self._ivf.nprobe * widen >= self._ivf.nlist

    def tune(
        self,
        query_ids: np.ndarray,
        recall_target: float,
        k: int = 10,
        *,
        originals: tuple[np.ndarray, np.ndarray | VectorRows] | None = None,
        held_out: np.ndarray | None = None,
    ) -> None:
        """The cheapest nprobe (and, for a compressed index with its originals, refine
        factor R) whose tie-aware Recall@k against exact search meets the target.

        Queries are stored vectors; each one's own entry is left out of both result
        lists, so recall measures finding the neighbours, not finding the query itself.
        Every returned id is re-scored exactly. Ground truth and queries are the original
        vectors: ``originals`` (ids, vectors: what a build was given), else the float16
        copies a compressed index keeps; only a PQ index without them falls back to its own
        lossy reconstructions, and the manifest's ``recall_basis`` says so. ``held_out``:
        query vectors that are not in the index (a build keeps its tuning sample out until
        tuned), as a user's queries are not; then ``query_ids`` is unused.
        """
        ivf = self._ivf
        if ivf is None or not self.count:
            self.manifest.nprobe, self.manifest.recall_at_10 = 0, 1.0
            self.manifest.recall_basis = "exact index"
            return
        k = min(k, self.count - 1)
        base: np.ndarray | VectorRows
        if originals is not None:
            ids, base = originals
            self.manifest.recall_basis = "original vectors"
        else:
            ids = self.ids()
            base = self  # read by id as needed: a 10M-vector index is never copied out
            self.manifest.recall_basis = (
                "reconstructed vectors (lossy: PQ)"
                if self.manifest.lossy
                else "float16 originals"
                if self.originals is not None
                else "stored vectors"
            )
        if held_out is not None:
            queries = np.ascontiguousarray(held_out, dtype=np.float32)
            query_ids = np.full(len(queries), -1, np.int64)  # no own entry to leave out
            self.manifest.recall_basis += ", held-out queries"
        else:
            query_ids = ids[np.isin(ids, query_ids)]
            queries = np.ascontiguousarray(as_rows(ids, base).vectors(query_ids), np.float32)
        # Half the queries choose the settings, the other half measure them: the recall
        # recorded is not the lucky draw that passed the target first.
        pick, check = slice(0, None, 2), slice(1, None, 2)
        if len(query_ids) < 2:
            pick = check = slice(None)
        base = as_rows(ids, base)  # once: an array's id lookup is sorted here, not per step
        exact_scores = exact_neighbour_scores(ids, base, query_ids, queries, k)

        wanted = k if held_out is not None else k + 1  # room for the query's own entry

        def measure(rows: slice) -> float:
            _, found_ids = self.search(queries[rows], wanted)
            rescored = exact_scores_of(queries[rows], found_ids, ids, base)
            scores = without_self(rescored, found_ids, query_ids[rows], k)
            return recall_at_k(exact_scores[rows], scores, k)

        refines = REFINE_STEPS if self.originals is not None else (0,)
        chosen: tuple[float, int, int, float] | None = None  # cost, nprobe, refine, recall
        highest = (-1.0, ivf.nlist, refines[-1])

        def cost(nprobe: int, refine: int) -> float:
            """Work per query: codes scanned in the probed lists, rows re-ranked."""
            scanned = self.count * nprobe / ivf.nlist * ivf.code_size
            return scanned + (k + 1) * max(refine, 1) * self.manifest.dim * 2 * bool(refine)

        for refine in refines:
            self.manifest.refine = refine
            tried: list[float] = []
            for nprobe in (n for n in NPROBE_STEPS if n <= ivf.nlist):
                if chosen is not None and cost(nprobe, refine) >= chosen[0]:
                    break  # dearer than what already meets the target
                self._probe(nprobe)
                recall = measure(pick)
                if recall > highest[0]:
                    highest = (recall, nprobe, refine)
                if recall >= recall_target:
                    chosen = (cost(nprobe, refine), nprobe, refine, recall)
                    break
                tried.append(recall)
                if len(tried) > 2 and recall - tried[-3] < PLATEAU:
                    break  # two doublings of the lists gained nothing: the codes limit it
        _, nprobe, refine, _ = chosen or (0.0, highest[1], highest[2], highest[0])
        self._probe(nprobe)
        self.manifest.nprobe, self.manifest.refine = int(nprobe), int(refine)
        recall = measure(check)
        self.manifest.recall_at_10 = round(recall, 4)
        log.info(
            "%s: nprobe %d, refine %d give recall@%d %.3f",
            self.manifest.space,
            nprobe,
            refine,
            k,
            recall,
        )

    # ---- files

    def save(self, folder: Path) -> None:
        if not self.trained and self.count:  # its ids live only in this process
            raise RuntimeError(
                f"the {self.manifest.space} index holds staged vectors: build it first "
                "(IndexSet.grow_if_needed) before saving"
            )
        folder.mkdir(parents=True, exist_ok=True)
        index_path, manifest_path = paths(folder, self.manifest.space)
        if self.originals is not None:  # before the index and manifest that refer to it
            self.originals.save(originals_path(folder, self.manifest.space))
            self.manifest.originals_bytes = self.originals.capacity * 2 * self.originals.dim
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
        manifest = Manifest.parse(manifest_path.read_bytes(), manifest_path)
        if manifest.fingerprint != fingerprint:
            raise model_mismatch(space, manifest.fingerprint, fingerprint)
        if dim is not None and manifest.dim != dim:
            raise dimension_mismatch(space, manifest.dim, dim)
        originals = _originals(folder, manifest, read_only=read_only)
        if not read_only:  # one read: the bytes that are checked are the bytes loaded
            data = index_path.read_bytes()
            _require_checksum(index_path, manifest, hashlib.sha256(data).hexdigest())
            try:
                index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
            except RuntimeError as exc:
                raise _damaged(index_path, exc) from exc
            return cls(index, manifest, originals)
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
        return cls(index, manifest, originals)


def _originals(folder: Path, manifest: Manifest, *, read_only: bool) -> OriginalVectors | None:
    if not manifest.originals:
        return None
    path = originals_path(folder, manifest.space)
    if not path.is_file():
        raise IndexFileError(
            f"the float16 vectors of the {manifest.space} index ({path}) are missing",
            hint="re-encode with `simmim index --rebuild`",
        )
    if path.stat().st_size < manifest.originals_bytes:
        raise IndexFileError(
            f"the float16 vectors of the {manifest.space} index ({path}) are cut short: "
            f"{path.stat().st_size} bytes of the {manifest.originals_bytes} saved",
            hint="re-encode with `simmim index --rebuild`",
        )
    return OriginalVectors(manifest.dim, path, read_only=read_only)


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


def originals_path(folder: Path, space: str) -> Path:
    return folder / f"{space}.f16"


def built_manifests(folder: Path, *, verify: bool = False) -> dict[str, dict[str, Any]]:
    """What `index status`, the dashboard and the demo show: each built space's manifest as
    plain data, plus ``bytes`` (the index file's size; None when the file is missing) and,
    with ``verify`` (reads every file), ``health``: "ok", or what is wrong and the fix."""
    out: dict[str, dict[str, Any]] = {}
    for space in SPACES:
        index_path, manifest_path = paths(folder, space)
        if manifest_path.is_file():
            try:
                manifest = asdict(Manifest.parse(manifest_path.read_bytes(), manifest_path))
            except IndexFileError as exc:
                # Shown, never a crash: the damage and its fix, in every view that lists it.
                manifest = _damaged_entry(space, f"{exc.message}; {exc.hint}")
            manifest["bytes"] = index_path.stat().st_size if index_path.is_file() else None
            if verify and "damaged" not in manifest:
                manifest["health"] = _health(index_path, manifest)
            out[space] = manifest
        elif index_path.is_file():  # an index nobody can read: its model is not known
            manifest = _damaged_entry(
                space,
                f"{index_path.name} has no manifest ({manifest_path.name} is missing); "
                "run `simmim index --rebuild`",
            )
            manifest["bytes"] = index_path.stat().st_size
            out[space] = manifest
    return out


def _damaged_entry(space: str, why: str) -> dict[str, Any]:
    """A status row for a space whose manifest cannot be read: the fields every view reads,
    and the damage as its health."""
    entry = asdict(Manifest(space, "damaged", "", 0, ""))
    entry["damaged"] = entry["health"] = f"DAMAGED: {why}"
    return entry


def verified_parts(manifest: dict[str, Any]) -> str:
    """What a healthy status checked, in words."""
    parts = ["sha256 of the index file"] if manifest.get("checksum") else ["index file readable"]
    if manifest.get("originals"):
        parts.append("float16 vectors: size and every row finite and unit-length")
    return " + ".join(parts)


def _health(index_path: Path, manifest: dict[str, Any]) -> str:
    """ "ok", or what is wrong and the fix. What it checks: the index file against its
    sha256; a compressed index's float16 file against its saved size, and every row in it
    finite and either absent (zero) or unit-length (what a damaged byte breaks)."""
    if not index_path.is_file():
        return "file missing: run `simmim index` (it re-queues what the index lacked)"
    if manifest.get("checksum") and file_checksum(index_path) != manifest["checksum"]:
        return "DAMAGED (checksum mismatch): run `simmim index --rebuild`"
    if manifest.get("originals"):
        path = originals_path(index_path.parent, manifest["space"])
        if not path.is_file():
            return "DAMAGED (float16 vectors missing): run `simmim index --rebuild`"
        if path.stat().st_size < int(manifest.get("originals_bytes") or 0):
            return "DAMAGED (float16 vectors cut short): run `simmim index --rebuild`"
        bad = OriginalVectors(int(manifest["dim"]), path, read_only=True).damaged_rows()
        if bad:
            return f"DAMAGED ({bad} float16 vectors unreadable): run `simmim index --rebuild`"
    return "ok"
