"""Indexes built a chunk at a time: what lets 10M vectors build on one 24 GB machine.

A build reads its vectors by id a bounded chunk at a time (from an array, the float16 store
of the index it replaces, or that index itself), a compressed index writes its float16
originals into its folder from the start, the exact ground truth is computed chunk by
chunk, and many lists get an HNSW coarse quantizer with two-level k-means centroids.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

import indexer.index.chooser as chooser
import indexer.index.index_set as index_set
import indexer.index.store as store
from indexer.index import IndexSet, build_index
from indexer.index.chooser import IndexPlan, choose_index
from indexer.index.manifest import ArrayVectors, exact_neighbour_scores, recall_at_k
from indexer.index.originals import OriginalVectors
from indexer.index.store import VectorIndex
from simmim.files import sweep_temp_files
from simmim.models import Space
from simmim.settings import Settings
from tests.test_index import clustered

GB = 1 << 30


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Add chunks, code-training samples and exact-search chunks at a test's size."""
    monkeypatch.setattr(index_set, "ADD_CHUNK", 1000)
    monkeypatch.setattr(index_set, "CODE_TRAINING_POINTS", 1000)
    monkeypatch.setattr("indexer.index.manifest.EXACT_CHUNK", 1500)


class CountingRows:
    """A VectorRows that records how many rows each read asked for."""

    def __init__(self, rows: OriginalVectors) -> None:
        self.rows = rows
        self.reads: list[int] = []

    @property
    def dim(self) -> int:
        return self.rows.dim

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        self.reads.append(len(ids))
        return self.rows.vectors(ids)


def independent_recall(index: VectorIndex, vectors: np.ndarray, queries: np.ndarray) -> float:
    """Exact top 10 over the originals, each returned id re-scored exactly (ids 1..n)."""
    truth, _ = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    _, found = index.search(queries, 10)
    rescored = np.einsum("qd,qkd->qk", queries, vectors[found - 1])
    return recall_at_k(truth, -np.sort(-rescored, axis=1))


def test_the_chooser_plans_ten_million_vectors_within_two_gigabytes() -> None:
    plan = choose_index(10_000_000, 512, 2 * GB)
    assert plan.factory == "IVF16384_HNSW32,PQ256x4fs"  # 128 bytes of 4-bit codes
    assert plan.bytes_ram <= 2 * GB
    # the estimate counts the graph's links beside the centroids and codes
    assert chooser.centroid_bytes(16384, 512) > 16384 * 512 * 4
    assert plan.bytes_disk - plan.bytes_ram == 10_000_000 * 512 * 2  # float16 originals
    assert choose_index(1_000_000, 512, 256 << 20).factory == "IVF4096,PQ256x4fs"  # flat quantizer


def test_exact_ground_truth_in_chunks_is_the_one_pass_answer() -> None:
    vectors = clustered(3000, 32, seed=1)
    ids = np.arange(5, 3005, dtype=np.int64)
    query_ids = ids[[0, 10, 2999]]
    queries = vectors[[0, 10, 2999]]
    whole = exact_neighbour_scores(ids, vectors, query_ids, queries, 10, chunk=1 << 20)
    chunked = exact_neighbour_scores(ids, vectors, query_ids, queries, 10, chunk=7)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    by_hand = -np.sort(-(queries @ vectors.T), axis=1)[:, 1:11]  # own entry (1.0) left out
    np.testing.assert_allclose(whole, by_hand, atol=1e-5)


@pytest.mark.usefixtures("small_chunks")
def test_a_build_from_the_float16_store_reads_chunks_and_maps_its_originals_from_the_start(
    tmp_path: Path,
) -> None:
    n, dim = 8000, 64
    data = clustered(n + 200, dim, seed=2)
    vectors, queries = data[:n], data[n:]  # queries never stored, from the same clusters
    ids = np.arange(1, n + 1, dtype=np.int64)
    # the source: a float16 store on disk, as a grown or migrated index reads from
    dataset = OriginalVectors.building(dim, tmp_path / "data", "dataset")
    dataset.put(ids, vectors)
    rows = CountingRows(dataset)
    plan = IndexPlan("IVF32,PQ8", "ivf", 32, 8)
    folder = tmp_path / "index"

    index = build_index("fused", plan, ids, rows, "fp", 0.95, folder=folder)

    # the training sample (at most 40 per list here: 1280) and chunks, never all 8000 rows
    assert max(rows.reads) <= 1500
    assert index.originals is not None and index.originals.path is not None
    assert index.originals.path.parent == folder and index.originals.path.name.startswith(".tmp-")
    index.save(folder)
    assert (folder / "fused.f16").is_file() and not list(folder.glob(".tmp-*"))
    assert index.originals.path == folder / "fused.f16"
    np.testing.assert_allclose(index.vectors(ids[:50]), vectors[:50], atol=1e-3)

    # the same recall as a build from the float32 array, and an independent check agrees
    in_memory = build_index("fused", plan, ids, vectors, "fp", 0.95)
    streamed = index.manifest.recall_at_10
    assert streamed is not None and in_memory.manifest.recall_at_10 is not None
    assert abs(streamed - in_memory.manifest.recall_at_10) <= 0.02
    assert abs(independent_recall(index, vectors, queries) - streamed) <= 0.03


def test_a_build_that_dies_leaves_only_a_temp_file_the_next_run_sweeps(tmp_path: Path) -> None:
    store_ = OriginalVectors.building(16, tmp_path, "text")
    store_.put(np.arange(1, 101), clustered(100, 16, seed=4))
    assert store_.path is not None and store_.path.stat().st_size == 101 * 16 * 2
    del store_  # never saved: the process died mid-build
    assert sweep_temp_files(tmp_path) == 1 and not list(tmp_path.iterdir())


def test_a_building_store_saved_into_another_folder_is_copied_and_its_temp_removed(
    tmp_path: Path,
) -> None:
    vectors = clustered(50, 16, seed=5)
    store_ = OriginalVectors.building(16, tmp_path / "a", "text")
    store_.put(np.arange(10, 60), vectors)
    (tmp_path / "b").mkdir()
    store_.save(tmp_path / "b" / "text.f16")
    assert not list((tmp_path / "a").iterdir())
    reread = OriginalVectors(16, tmp_path / "b" / "text.f16", read_only=True)
    np.testing.assert_allclose(reread.vectors(np.arange(10, 60)), vectors, atol=1e-3)
    assert not reread.vectors(np.array([0, 9, 60, 10**6])).any()  # holes and beyond: zeros


def test_many_lists_get_two_level_centroids_and_an_hnsw_quantizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "MANY_LISTS", 64)  # the 8192-list path at a test's size
    monkeypatch.setattr(chooser, "MANY_LISTS", 64)
    n, dim = 12_000, 32
    data = clustered(n + 300, dim, seed=6)
    vectors, queries = data[:n], data[n:]
    ids = np.arange(1, n + 1, dtype=np.int64)
    assert chooser.coarse(64) == "IVF64_HNSW32"
    plan = IndexPlan("IVF64_HNSW32,PQ8", "ivf", 64, 8)
    index = build_index("text", plan, ids, vectors, "fp", 0.95, folder=tmp_path)
    ivf = faiss.extract_index_ivf(index.index)
    quantizer = faiss.downcast_index(ivf.quantizer)
    assert isinstance(quantizer, faiss.IndexHNSWFlat) and quantizer.ntotal == 64
    recorded = index.manifest.recall_at_10
    assert recorded is not None and recorded >= 0.95 and index.manifest.refine > 1
    assert abs(independent_recall(index, vectors, queries) - recorded) <= 0.03
    index.save(tmp_path)
    for read_only in (False, True):
        loaded = VectorIndex.load(tmp_path, "text", "fp", read_only=read_only)
        assert loaded is not None
        np.testing.assert_array_equal(
            loaded.search(queries[:5], 5)[1], index.search(queries[:5], 5)[1]
        )
    # the graph's beam follows nprobe (at HNSW's default 16 most of 64 lists are missed)
    assert quantizer.hnsw.efSearch == store.beam(index.manifest.nprobe) >= 16
    among = ids[1000:1100]  # a filter's ids: every list probed, only these returned
    _, found = index.search(queries[:3], 5, among=among)
    assert np.isin(found, among).all()
    _, widened = index.search(queries[:3], 5, widen=8.0)
    assert (widened > 0).all() and quantizer.hnsw.efSearch == store.beam(index.manifest.nprobe)
    assert index.remove(ids[:3]) == 3 and index.count == n - 3


def test_many_probed_lists_are_found_by_scanning_the_centroids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the graph's beam would visit more centroids than there are, the lists are found
    by a flat scan of its centroid storage instead: the same lists, so the same results,
    for plain, widened and filtered searches."""
    n = 4000
    data = clustered(n + 20, 64, seed=12)
    vectors, queries = data[:n], data[n:]
    ids = np.arange(1, n + 1, dtype=np.int64)
    plan = IndexPlan("IVF64_HNSW32,PQ32x4fs", "ivf", 64, 16)
    index = build_index("text", plan, ids, vectors, "fp", 0.95, folder=tmp_path)
    among = ids[500:700]
    scans: list[int] = []
    preassigned = VectorIndex._preassigned

    def counting(self: VectorIndex, *args: object, **kwargs: object) -> object:
        scans.append(1)
        return preassigned(self, *args, **kwargs)  # type: ignore[arg-type]

    def searches() -> list[np.ndarray]:
        return [
            *index.search(queries, 5),
            *index.search(queries, 5, widen=4.0),
            *index.search(queries, 5, among=among),
        ]

    monkeypatch.setattr(VectorIndex, "_preassigned", counting)
    scanned = searches()  # 64 centroids: any beam × 32 links visits more than all of them
    assert len(scans) == 3
    monkeypatch.setattr(store, "HNSW_LINKS", 1)  # now the graph looks cheaper: walk it
    walked = searches()
    assert len(scans) == 4  # only the filtered search, which probes all 64 lists, scans
    for mine, theirs in zip(scanned, walked, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5)
    assert np.isin(scanned[5], among).all() and (scanned[1] > 0).all()


@pytest.mark.usefixtures("small_chunks")
def test_growth_reads_the_outgrown_index_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path, index={"memory_budget_mb": 1})
    indexes = IndexSet(settings, "fp", 64, load=False)
    n = 6000
    vectors = clustered(n, 64, seed=8)
    ids = np.arange(1, n + 1, dtype=np.int64)
    first = indexes.plan(n)
    assert "PQ" in first.factory  # 1 MB: compressed
    indexes.spaces["text"] = build_index(
        "text", first, ids, vectors, "fp", 0.95, folder=indexes.folder
    )
    indexes.save()
    old = indexes.spaces["text"]
    assert old is not None
    reads: list[int] = []
    original_vectors = VectorIndex.vectors

    def counting(self: VectorIndex, wanted: np.ndarray) -> np.ndarray:
        if self is old:
            reads.append(len(wanted))
        return original_vectors(self, wanted)

    monkeypatch.setattr(VectorIndex, "vectors", counting)
    monkeypatch.setattr(chooser, "ivf_lists", lambda count: 32)  # the corpus outgrew 64 lists
    assert indexes.grow_if_needed("text")
    grown = indexes.spaces["text"]
    assert grown is not None and grown.manifest.factory != first.factory
    assert reads and max(reads) <= 1500  # chunks and the training sample, never all 6000
    # from the float16 originals, not the PQ decoding: the same rows, bit for bit
    np.testing.assert_array_equal(grown.vectors(ids[:100]), old.vectors(ids[:100]))
    indexes.save()
    assert not list(indexes.folder.glob(".tmp-*"))
    reread = IndexSet(settings, "fp", 64, read_only=True)
    again = reread.spaces["text"]
    assert again is not None and again.manifest.factory == grown.manifest.factory
    np.testing.assert_array_equal(again.vectors(ids[:100]), old.vectors(ids[:100]))


def test_the_tuner_stops_probing_when_more_lists_stop_helping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PQ index without its originals cannot reach the target at any nprobe: the tuner
    must not scan every list to find that out (at 10M vectors that is minutes per step)."""
    n, dim = 20_000, 64
    vectors = clustered(n, dim, seed=9)
    ids = np.arange(1, n + 1, dtype=np.int64)
    index = build_index("fused", IndexPlan("IVF256,PQ4", "ivf", 256, 4), ids, vectors, "fp", 0.95)
    index.originals, index.manifest.originals, index.manifest.refine = None, "", 0
    probed: list[int] = []
    search = VectorIndex.search

    def recording(self: VectorIndex, queries: np.ndarray, k: int, *args, **kwargs):  # type: ignore[no-untyped-def]
        probed.append(faiss.extract_index_ivf(self.index).nprobe)
        return search(self, queries, k, *args, **kwargs)

    monkeypatch.setattr(VectorIndex, "search", recording)
    index.tune(ids[:300], 0.95, originals=(ids, ArrayVectors(ids, vectors)))
    assert index.manifest.recall_at_10 is not None and index.manifest.recall_at_10 < 0.95
    assert max(probed) < 256, probed  # stopped at the plateau, not at every list
    assert index.manifest.nprobe in probed  # the best it found, recorded as not meeting it


def test_a_rebuild_that_will_need_compression_stages_on_disk_not_in_an_exact_index(
    tmp_path: Path,
) -> None:
    """At 10M × 512-d an exact staging index would need 20 GB of RAM per space: a rebuild
    whose size calls for PQ keeps each vector at float16 in the staging folder until the
    index is trained and filled from there."""
    settings = Settings(data_dir=tmp_path, index={"memory_budget_mb": 1})
    live = IndexSet(settings, "fp", 64, load=False)
    n = 6000
    vectors = clustered(n, 64, seed=10)
    ids = np.arange(1, n + 1, dtype=np.int64)
    staging = live.start_rebuild(expected=n)
    for start in range(0, n, 500):
        staging.get(Space.TEXT).add(ids[start : start + 500], vectors[start : start + 500])
    staged = staging.spaces[Space.TEXT]
    assert staged is not None and "PQ" in staged.manifest.factory and not staged.trained
    assert staged.index.ntotal == 0 and staged.count == n  # only ids in RAM
    assert staged.originals is not None and staged.originals.path is not None
    assert staged.originals.path.parent == staging.folder
    staged.add(ids[:10], vectors[10:20])  # a re-add replaces
    assert staged.count == n
    np.testing.assert_allclose(staged.vectors(ids[:10]), vectors[10:20], atol=1e-3)
    assert staged.remove(ids[-5:]) == 5 and staged.count == n - 5
    staging.get(Space.IMAGE)  # a space that gets nothing is dropped, not saved untrained

    assert staging.grow_if_needed(Space.TEXT)
    assert not staging.grow_if_needed(Space.IMAGE) and staging.spaces[Space.IMAGE] is None
    built = staging.spaces[Space.TEXT]
    assert built is not None and built.trained and built.count == n - 5
    assert built.manifest.recall_at_10 is not None and built.manifest.recall_at_10 >= 0.9
    assert len(list(staging.folder.glob(".tmp-*"))) == 1  # the built index's, not the staged
    live.finish_rebuild(staging)
    assert not list(live.live.glob(".tmp-*"))

    reread = IndexSet(settings, "fp", 64, read_only=True)
    text = reread.spaces[Space.TEXT]
    assert reread.spaces[Space.IMAGE] is None and text is not None and text.count == n - 5
    _, found = text.search(vectors[20:21], 1)
    assert found[0, 0] == ids[20]
    np.testing.assert_allclose(text.vectors(ids[:10]), vectors[10:20], atol=1e-3)


@pytest.mark.usefixtures("small_chunks")
def test_an_eight_bit_pq_index_is_rebuilt_as_fast_scan_from_its_originals(
    tmp_path: Path,
) -> None:
    """An index saved with 8-bit codes (before the chooser planned 4-bit fast-scan ones) is
    rebuilt by the next index run from its float16 originals, and keeps its recall."""
    settings = Settings(data_dir=tmp_path, index={"memory_budget_mb": 1})
    n = 6000
    data = clustered(n + 200, 64, seed=9)
    vectors, queries = data[:n], data[n:]
    ids = np.arange(1, n + 1, dtype=np.int64)
    indexes = IndexSet(settings, "fp", 64, load=False)
    plan = indexes.plan(n)
    assert plan.factory.endswith(f",PQ{2 * plan.pq_bytes}x4fs")
    eight_bit = IndexPlan(
        plan.factory.replace(f"PQ{2 * plan.pq_bytes}x4fs", f"PQ{plan.pq_bytes}"),
        "ivf",
        plan.nlist,
        plan.pq_bytes,
    )
    indexes.spaces["text"] = build_index(
        "text", eight_bit, ids, vectors, "fp", 0.95, folder=indexes.folder
    )
    indexes.save()

    upgraded = IndexSet(settings, "fp", 64)  # the next run, after the upgrade
    assert upgraded.grow_if_needed("text")
    rebuilt = upgraded.spaces["text"]
    assert rebuilt is not None and rebuilt.manifest.factory == plan.factory
    assert isinstance(rebuilt.index, faiss.IndexIVFPQFastScan)
    recorded = rebuilt.manifest.recall_at_10
    assert recorded is not None and recorded >= 0.95
    assert independent_recall(rebuilt, vectors, queries) >= 0.92
    upgraded.save()
    again = IndexSet(settings, "fp", 64, read_only=True).spaces["text"]
    assert again is not None and again.manifest.factory == plan.factory
    assert not upgraded.grow_if_needed("text")  # nothing left to change
