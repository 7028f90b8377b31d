"""Exact search with torch (the GPU path without GPU FAISS) gives FAISS's exact answers."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch

from indexer.index.device_search import DeviceExact


def unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def faiss_exact(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int):  # type: ignore[no-untyped-def]
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    index.add_with_ids(vectors, ids)
    return index.search(queries, k)


@pytest.mark.parametrize("k", [1, 10, 50])
def test_matches_faiss_flat_including_filters_and_short_answers(k: int) -> None:
    vectors, queries = unit(3000, 64, 0), unit(37, 64, 1)
    ids = np.random.default_rng(2).permutation(100_000)[:3000].astype(np.int64)
    store = DeviceExact(ids, vectors, "cpu")
    scores, found = store.search(queries, k)
    want_scores, want_ids = faiss_exact(ids, vectors, queries, k)
    assert (found == want_ids).mean() >= 0.999  # float ties may swap order
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)

    among = ids[::7]
    scores, found = store.search(queries, k, among)
    allowed = np.isin(ids, among)
    want_scores, want_ids = faiss_exact(ids[allowed], vectors[allowed], queries, k)
    assert (found == want_ids).mean() >= 0.999
    assert np.isin(found, among).all()

    few = store.search(queries[:2], k, among=ids[:3])  # fewer matches than k: -1 after them
    assert (few[1][:, :3] >= 0).all() and (few[1][:, 3:] == -1).all()


def test_empty_store_and_blocks_of_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    empty = DeviceExact(np.zeros(0, np.int64), np.zeros((0, 8), np.float32), "cpu")
    scores, found = empty.search(unit(3, 8, 0), 5)
    assert (found == -1).all() and np.isneginf(scores).all()
    import indexer.index.device_search as module

    monkeypatch.setattr(module, "QUERY_BLOCK_SCORES", 1000)  # 1000 / 500 rows: 2 queries a block
    vectors, queries = unit(500, 16, 3), unit(9, 16, 4)
    ids = np.arange(500, dtype=np.int64)
    _, found = DeviceExact(ids, vectors, "cpu").search(queries, 5)
    assert (found == faiss_exact(ids, vectors, queries, 5)[1]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_flat_store_searches_on_the_gpu_with_faiss_answers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from indexer.index.chooser import choose_index
    from indexer.index.store import VectorIndex

    vectors, queries = unit(20_000, 128, 5), unit(100, 128, 6)
    ids = np.arange(20_000, dtype=np.int64) * 3
    index = VectorIndex.create("image", choose_index(len(ids), 128, 4 << 30), 128, "test", 0.95)
    index.add(ids, vectors)
    _, found = index.search(queries, 10)
    assert index._device is not None and index._device.device.type == "cuda"
    want = faiss_exact(ids, vectors, queries, 10)[1]
    assert (found == want).mean() >= 0.99  # float16 scores may swap near-ties


def test_the_store_hands_search_to_the_device_copy_and_drops_it_on_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wiring, on the CPU: the copy is made on the first search, answers filters, and
    is remade after an add or a remove (never a stale answer)."""
    import indexer.index.store as store_module
    from indexer.index.chooser import choose_index
    from indexer.index.store import VectorIndex

    made: list[int] = []

    def on_cpu(ids: np.ndarray, vectors: np.ndarray, _device: str) -> DeviceExact:
        made.append(len(ids))
        return DeviceExact(ids, vectors, "cpu")

    monkeypatch.setattr(store_module, "device_search_available", lambda: True)
    monkeypatch.setattr(store_module, "DeviceExact", on_cpu)
    vectors, queries = unit(400, 32, 7), unit(5, 32, 8)
    ids = np.arange(400, dtype=np.int64) + 10
    index = VectorIndex.create("image", choose_index(400, 32, 4 << 30), 32, "test", 0.95)
    index.add(ids, vectors)
    _, found = index.search(queries, 3)
    assert (found == faiss_exact(ids, vectors, queries, 3)[1]).all() and made == [400]
    _, found = index.search(queries, 3, among=ids[:50])
    assert np.isin(found, ids[:50]).all() and made == [400]
    index.remove(found[:, 0])
    _, again = index.search(queries, 3, among=ids[:50])
    assert not np.isin(again, found[:, 0]).any() and len(made) == 2
