"""One behavioural suite for every vector store: FAISS files, Milvus Lite, a real Milvus server.

The server is the PyPI ``milvus`` standalone build, started once per session on loopback
(tests/milvus_server.py); each test uses its own collection prefix and drops it after.
Under CI=true a server that cannot start fails the run, never skips it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from encoder import Encoder, load_encoder
from indexer.index import (
    SPACES,
    FieldFilter,
    Space,
    VectorMeta,
    chooser,
    open_stores,
    stores_status,
)
from indexer.index.manifest import IndexFileError
from indexer.index.milvus_store import MilvusSetupError, MilvusStores
from indexer.migrate import migrate_index, with_backend
from indexer.pipeline.runner import run_ingest
from indexer.pipeline.writer import IndexWriter
from indexer.search import SearchFilters, search
from simmim import migrations
from simmim.db import make_engine, session_factory, session_scope
from simmim.models import Item, ItemStatus, Source
from simmim.settings import Settings
from tests.encoder_fixtures import tiny_settings, write_tiny_weights
from tests.test_index import CAPTIONS, seed_items

BACKENDS = ["faiss", "milvus-lite", "milvus-server"]


def _release_lite(uri: str) -> None:
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(uri)


@pytest.fixture(params=BACKENDS)
def backend_settings(
    request: pytest.FixtureRequest, tiny_weights: Path, tmp_path: Path
) -> Iterator[Settings]:
    """Settings for the tiny model with the backend under test, cleaned up afterwards."""
    index: dict[str, object] = {"backend": "faiss"}
    if request.param == "milvus-lite":
        index = {"backend": "milvus", "milvus_uri": str(tmp_path / "lite.db")}
    elif request.param == "milvus-server":
        uri = request.getfixturevalue("milvus_server_uri")
        index = {
            "backend": "milvus",
            "milvus_uri": uri,
            "milvus_prefix": f"t{uuid.uuid4().hex[:10]}",
        }
    settings = Settings(
        data_dir=tmp_path / "data",
        encoder=tiny_settings(tiny_weights),  # type: ignore[arg-type]
        index=index,  # type: ignore[arg-type]
    )
    yield settings
    if settings.index.backend == "milvus":
        stores = MilvusStores(settings, "", 0, load=False)
        stores.drop_all()
        stores.close()
        if request.param == "milvus-lite":
            _release_lite(settings.index.milvus_uri)


@pytest.fixture
def world(
    backend_settings: Settings, sqlite_url: str
) -> Iterator[tuple[Settings, Engine, Encoder]]:
    engine = make_engine(sqlite_url)
    migrations.upgrade(engine)
    yield backend_settings, engine, load_encoder(backend_settings)
    engine.dispose()


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def agreement(settings: Settings, engine: Engine, encoder: Encoder) -> dict[Space, int]:
    """Every item the database calls indexed is in exactly the spaces it names, once."""
    stores = open_stores(settings, encoder.fingerprint, encoder.dim)
    with session_scope(session_factory(engine)) as session:
        rows = session.execute(select(Item.id, Item.status, Item.indexed_spaces)).all()
    counts = {}
    try:
        for space in SPACES:
            store = stores.spaces[space]
            held = store.ids().tolist() if store is not None else []
            assert len(held) == len(set(held)), f"{space}: an id stored twice"
            vouched = {
                i for i, status, bits in rows if status is ItemStatus.INDEXED and bits & space.bit
            }
            assert set(held) == vouched, space
            assert store is None or store.count == len(held)
            counts[space] = len(held)
    finally:
        stores.close()
    return counts


# ---- the store itself


def test_add_replace_remove_search_and_reopen(backend_settings: Settings) -> None:
    rng = np.random.default_rng(3)
    dim = 16
    stores = open_stores(backend_settings, "fp", dim)
    store = stores.get(Space.TEXT)
    ids = np.arange(100, 150, dtype=np.int64)
    vectors = unit(rng, 50, dim)
    times = np.arange(50, dtype=np.int64) * 86_400 + 1_700_000_000
    meta = VectorMeta(ids % 3, times)
    store.add(ids, vectors, meta)
    assert store.count == 50
    replacement = unit(rng, 10, dim)
    store.add(ids[:10], replacement, VectorMeta(meta.source_ids[:10], times[:10]))
    assert store.count == 50, "a re-add replaces, never duplicates"
    np.testing.assert_allclose(store.vectors(ids[:10]), replacement, atol=1e-6)
    np.testing.assert_allclose(store.vectors(ids[20:25]), vectors[20:25], atol=1e-6)

    scores, found = store.search(vectors[30:32], 5)
    assert found[:, 0].tolist() == [130, 131]
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-4)
    assert (np.diff(scores, axis=1) <= 1e-6).all(), "best first"
    _, everything = store.search(vectors[:1], 500)
    assert sorted(i for i in everything[0].tolist() if i >= 0) == ids.tolist()

    if store.filters_fields:  # the filter runs inside the store and still returns k
        since = datetime.fromtimestamp(int(times[20]), UTC)
        where = FieldFilter(since=since, source_ids=(1,))
        _, hits = store.search(vectors[:1], 5, where)
        allowed = {
            int(i) for i, s, t in zip(ids, ids % 3, times, strict=True) if s == 1 and t >= times[20]
        }
        assert len(hits[0][hits[0] >= 0]) == 5 and set(hits[0].tolist()) <= allowed
    else:
        with pytest.raises(ValueError):
            store.search(vectors[:1], 5, FieldFilter(source_ids=(1,)))

    assert store.remove(np.array([100, 101, 102, 9999], np.int64)) == 3
    assert store.remove(np.array([100], np.int64)) == 0
    assert store.count == 47 and 100 not in store.ids().tolist()
    stores.save([Space.TEXT])
    stores.close()

    reopened = open_stores(backend_settings, "fp", dim, read_only=True)
    text = reopened.spaces[Space.TEXT]
    assert text is not None and text.count == 47
    assert sorted(text.ids().tolist()) == list(range(103, 150))
    assert reopened.spaces[Space.IMAGE] is None
    reopened.close()


def test_another_model_or_dimension_is_refused_until_rebuilt(
    world: tuple[Settings, Engine, Encoder], tmp_path: Path
) -> None:
    settings, engine, encoder = world
    seed_items(settings, engine, n=8)
    run_ingest(settings, engine, encoder)
    with pytest.raises(IndexFileError) as caught:
        open_stores(settings, "another-model", encoder.dim)
    assert "--rebuild" in (caught.value.hint or "")
    with pytest.raises(IndexFileError):
        open_stores(settings, encoder.fingerprint, encoder.dim + 1)

    other_settings = settings.model_copy(
        update={
            "encoder": settings.encoder.model_copy(
                update={
                    "pretrained": str(write_tiny_weights(tmp_path / "other.safetensors", seed=9))
                }
            )
        }
    )
    other = load_encoder(other_settings)
    assert other.fingerprint != encoder.fingerprint
    summary = run_ingest(other_settings, engine, other, rebuild=True)  # the model-change path
    assert summary.indexed == 8
    assert agreement(other_settings, engine, other)[Space.FUSED] == 8
    with pytest.raises(IndexFileError):
        open_stores(settings, encoder.fingerprint, encoder.dim)


# ---- through ingest and search


@pytest.mark.parametrize("path", ["exact among the matches", "store filter, widened"])
def test_filters_still_return_k(
    world: tuple[Settings, Engine, Encoder], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine, encoder = world
    if path != "exact among the matches":  # as if the filter left more than exact search takes
        monkeypatch.setattr("indexer.search.EXACT_AMONG_MAX", 0)
    seed_items(settings, engine, n=40)
    run_ingest(settings, engine, encoder)
    with session_scope(session_factory(engine)) as session:
        first = session.scalars(select(Source.id).order_by(Source.id)).first()
    since = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=10)
    until = since + timedelta(days=20)
    stores = open_stores(settings, encoder.fingerprint, encoder.dim, read_only=True)
    try:
        results = search(
            engine,
            encoder,
            stores,
            text=CAPTIONS[0],
            space="text",
            k=6,
            filters=SearchFilters(since=since, until=until, source_ids=[first]),
        )
        # days 10..29 from source `first` (every other item): 10 match, so k=6 are returned
        assert len(results) == 6
        for r in results:
            assert r.source_id == first
            assert r.published_at is not None
            assert since <= r.published_at.replace(tzinfo=UTC) < until
        assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    finally:
        stores.close()


def test_a_crash_between_store_write_and_mark_is_settled_by_the_next_run(
    world: tuple[Settings, Engine, Encoder], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine, encoder = world
    seed_items(settings, engine, n=12)

    def crash(self: IndexWriter, also: object = None) -> None:
        raise KeyboardInterrupt("killed after the store write, before the marks")

    monkeypatch.setattr(IndexWriter, "mark", crash)
    with pytest.raises(KeyboardInterrupt):
        run_ingest(settings, engine, encoder)
    monkeypatch.undo()
    with session_scope(session_factory(engine)) as session:
        assert not session.scalars(select(Item).where(Item.status == ItemStatus.INDEXED)).first()
    summary = run_ingest(settings, engine, encoder)
    assert summary.indexed == 12
    counts = agreement(settings, engine, encoder)
    assert counts[Space.FUSED] == 12 and counts[Space.TEXT] == 12


def test_rebuild_swaps_in_a_complete_set(world: tuple[Settings, Engine, Encoder]) -> None:
    settings, engine, encoder = world
    seed_items(settings, engine, n=10)
    run_ingest(settings, engine, encoder)
    before = stores_status(settings)
    summary = run_ingest(settings, engine, encoder, rebuild=True)
    assert summary.indexed == 10
    assert agreement(settings, engine, encoder)[Space.TEXT] == 10
    after = stores_status(settings)
    assert set(after) == set(before) == {str(s) for s in SPACES}
    if settings.index.backend == "milvus":
        assert {m["collection"] for m in after.values()}.isdisjoint(
            m["collection"] for m in before.values()
        ), "new collections"
        stores = MilvusStores(settings, "", 0, load=False)
        names = [n for n in stores.client.list_collections() if n.startswith(stores.prefix)]
        stores.close()
        assert sorted(names) == sorted(
            [stores.meta_name] + [m["collection"] for m in after.values()]
        )
    stores = open_stores(settings, encoder.fingerprint, encoder.dim, read_only=True)
    hit = search(engine, encoder, stores, text=f"{CAPTIONS[2]} (2)", space="text", k=1)
    stores.close()
    assert hit and hit[0].title.startswith(CAPTIONS[2])


def test_growth_picks_a_tuned_index_type(
    world: tuple[Settings, Engine, Encoder], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine, encoder = world
    monkeypatch.setattr(chooser, "FLAT_MAX", 25)
    monkeypatch.setattr(chooser, "ivf_lists", lambda count: 4)
    seed_items(settings, engine, n=40)
    summary = run_ingest(settings, engine, encoder)
    assert Space.TEXT in summary.rebuilt
    status = stores_status(settings)["text"]
    assert "IVF" in status["factory"] and status["count"] == 40
    assert status["recall_at_10"] is not None and status["recall_at_10"] >= 0.95
    assert agreement(settings, engine, encoder)[Space.TEXT] == 40


@pytest.mark.parametrize("backend_settings", ["milvus-lite", "milvus-server"], indirect=True)
def test_migrate_faiss_to_milvus_and_back_gives_identical_results(
    world: tuple[Settings, Engine, Encoder],
) -> None:
    milvus, engine, encoder = world
    faiss_settings = with_backend(milvus, "faiss")
    seed_items(faiss_settings, engine, n=16)
    run_ingest(faiss_settings, engine, encoder)

    def results(settings: Settings) -> list[tuple[int, float]]:
        stores = open_stores(settings, encoder.fingerprint, encoder.dim, read_only=True)
        try:
            found = []
            for space, query in (
                ("text", CAPTIONS[3]),
                ("image", CAPTIONS[1]),
                ("fused", CAPTIONS[0]),
            ):
                hits = search(engine, encoder, stores, text=query, space=space, k=8)
                found += [(r.item_id, round(r.score, 4)) for r in hits]
            return found
        finally:
            stores.close()

    expected = results(faiss_settings)
    there = migrate_index(faiss_settings, engine, encoder, milvus)
    assert not there.reencoded and there.copied["fused"] == 16
    assert results(milvus) == expected
    agreement(milvus, engine, encoder)

    back_dir = milvus.data_dir.parent / "data-back"
    faiss_again = with_backend(milvus, "faiss").model_copy(update={"data_dir": back_dir})
    back = migrate_index(milvus, engine, encoder, faiss_again)
    assert not back.reencoded and back.copied == there.copied
    assert results(faiss_again) == expected


# ---- bad settings


def test_unreachable_or_wrong_milvus_uri_names_the_setting(tmp_path: Path) -> None:
    down = Settings(
        data_dir=tmp_path,
        index={"backend": "milvus", "milvus_uri": "http://127.0.0.1:9", "milvus_timeout_s": 2},  # type: ignore[arg-type]
    )
    with pytest.raises(MilvusSetupError) as caught:
        open_stores(down, "fp", 8)
    assert "SIMMIM_INDEX__MILVUS_URI" in caught.value.message
    wrong = Settings(data_dir=tmp_path, index={"backend": "milvus", "milvus_uri": "vectors.bin"})  # type: ignore[arg-type]
    with pytest.raises(MilvusSetupError) as caught:
        open_stores(wrong, "fp", 8)
    assert "SIMMIM_INDEX__MILVUS_URI" in caught.value.message and ".db" in (caught.value.hint or "")


# ---- the commands


def test_migrate_status_and_search_commands_on_milvus_lite(
    tiny_weights: Path, tmp_path: Path, cli: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's path: index on FAISS, migrate, switch the setting, search; and back."""
    monkeypatch.setenv("SIMMIM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIMMIM_ENCODER__MODEL", "simmim-tiny")
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", str(tiny_weights))
    monkeypatch.setenv("SIMMIM_ENCODER__CPU_INT8", "false")
    lite = tmp_path / "vectors.db"
    monkeypatch.setenv("SIMMIM_INDEX__MILVUS_URI", str(lite))
    settings = Settings()
    engine = make_engine(settings.database_url)
    migrations.upgrade(engine)
    seed_items(settings, engine, n=10)
    try:
        assert "indexed 10 item(s)" in cli("index")
        before = cli("search", f"{CAPTIONS[1]} (1)", "--space", "text", "-k", "3")
        out = cli("index", "migrate", "--to", "milvus")
        assert "faiss → milvus: copied: image 8, text 10, fused 10" in out, out
        assert "SIMMIM_INDEX__BACKEND=milvus" in out

        monkeypatch.setenv("SIMMIM_INDEX__BACKEND", "milvus")
        status = cli("index", "status")
        assert "backend: milvus" in status and "FLAT" in status and "simmim_text_" in status
        assert cli("search", f"{CAPTIONS[1]} (1)", "--space", "text", "-k", "3") == before
        assert "indexed 0 item(s)" in cli("index"), "nothing pending: the copy was complete"
        assert "indexed 10 item(s)" in cli("index", "--rebuild")
        assert cli("search", f"{CAPTIONS[1]} (1)", "--space", "text", "-k", "3") == before
    finally:
        _release_lite(str(lite))
        engine.dispose()


def test_a_store_that_goes_away_mid_run_gives_one_error_naming_the_setting(
    tmp_path: Path,
) -> None:
    lite = str(tmp_path / "gone.db")
    settings = Settings(data_dir=tmp_path, index={"backend": "milvus", "milvus_uri": lite})  # type: ignore[arg-type]
    stores = open_stores(settings, "fp", 8)
    store = stores.get(Space.TEXT)
    store.add(np.arange(1, 4, dtype=np.int64), np.eye(3, 8, dtype=np.float32))
    _release_lite(lite)  # the server stops under the open client
    with pytest.raises(MilvusSetupError) as caught:
        store.search(np.eye(1, 8, dtype=np.float32), 2)
    assert "SIMMIM_INDEX__MILVUS_URI" in caught.value.message


@pytest.mark.parametrize("backend_settings", ["milvus-lite", "milvus-server"], indirect=True)
def test_listing_ids_finds_every_one_across_gaps_and_dense_blocks(
    backend_settings: Settings,
) -> None:
    """Milvus ids are listed in id ranges (no query iterator): nothing may fall between."""
    dense = np.arange(1, 20_001, dtype=np.int64)  # more than one query's result window
    sparse = np.array([50_000, 1_000_003, 2**40 + 7], dtype=np.int64)
    ids = np.concatenate([dense, sparse])
    stores = open_stores(backend_settings, "fp", 4)
    try:
        store = stores.get(Space.IMAGE)
        store.add(ids, np.tile(np.eye(1, 4, dtype=np.float32), (len(ids), 1)))
        assert np.array_equal(np.sort(store.ids()), ids)
        assert store.remove(sparse) == 3 and store.count == len(dense)
    finally:
        stores.close()


@pytest.mark.parametrize("backend_settings", ["milvus-lite", "milvus-server"], indirect=True)
def test_a_recall_target_above_0_99_grows_into_a_tuned_hnsw(
    backend_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chooser, "FLAT_MAX_HIGH_RECALL", 25)
    index = backend_settings.index.model_copy(update={"recall_target": 0.995})
    settings = backend_settings.model_copy(update={"index": index})
    rng = np.random.default_rng(5)
    vectors = unit(rng, 400, 16)
    stores = open_stores(settings, "fp", 16)
    try:
        stores.get(Space.TEXT).add(np.arange(1, 401, dtype=np.int64), vectors)
        assert stores.grow_if_needed(Space.TEXT)
        store = stores.spaces[Space.TEXT]
        assert store is not None
        manifest = store.manifest
        assert manifest.kind == "hnsw" and manifest.recall_basis == "original vectors"
        assert manifest.recall_at_10 is not None and manifest.recall_at_10 >= 0.995
        _, found = store.search(vectors[:20], 3)
        assert found[:, 0].tolist() == list(range(1, 21))
    finally:
        stores.close()
