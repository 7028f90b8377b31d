"""FAISS index stores, the ingest pipeline with reconcile, and search."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faiss
import numpy as np
import pytest
from sqlalchemy import Engine, delete, select, update

from encoder import Encoder, load_encoder
from indexer.index import IndexSet, build_index
from indexer.index.chooser import FLAT_MAX, IndexPlan, choose_index, ivf_lists
from indexer.index.store import (
    IndexFileError,
    VectorIndex,
    gpu_count,
    paths,
    recall_at_k,
)
from indexer.pipeline.runner import run_ingest
from indexer.search import SearchError, SearchFilters, search
from simmim.db import session_factory, session_scope
from simmim.files import file_checksum
from simmim.models import Item, ItemStatus, Source, SourceKind, Space
from simmim.paths import DataLayout
from simmim.settings import Settings
from tests.encoder_fixtures import picture, tiny_settings

GB = 1 << 30


def clustered(n: int, dim: int, seed: int, clusters: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# ---- chooser (nothing built)


def test_chooser_rules() -> None:
    assert choose_index(0, 512, 4 * GB).factory == "IDMap2,Flat"
    assert choose_index(FLAT_MAX, 512, 4 * GB).kind == "flat"
    plan = choose_index(1_000_000, 512, 4 * GB)
    assert plan.factory == "IVF4096,Flat" and plan.nlist == 4096
    small_budget = choose_index(1_000_000, 512, 256 << 20)  # 256 MB: raw vectors do not fit
    assert small_budget.factory == "IVF4096,PQ256x4fs"  # 4-bit fast-scan codes
    assert small_budget.pq_bytes == 128  # the largest code that fits: more bytes, more recall
    assert small_budget.bytes_ram <= 256 << 20
    # a dimension that 2m does not divide takes the next smaller code that fits
    assert choose_index(1_000_000, 384, 200 << 20).factory == "IVF4096,PQ192x4fs"
    assert choose_index(100_000, 512, 4 * GB, recall_target=0.995).kind == "flat"
    assert choose_index(100_000, 512, 4 * GB, recall_target=0.95).kind == "ivf"
    assert choose_index(30_000, 512, 10 << 20).kind == "ivf"  # flat would not fit 10 MB
    assert ivf_lists(10) == 64 and ivf_lists(10**9) == 65536
    with pytest.raises(ValueError, match="MEMORY_BUDGET"):
        choose_index(10**9, 512, 1 << 20)


# ---- approximate against exact


@pytest.mark.parametrize("factory", ["IVF64,Flat", "IVF64,PQ16", "IVF64,PQ32x4fs"])
def test_recorded_recall_holds_on_held_out_queries(factory: str) -> None:
    """IVF-Flat meets its target; for both, the recall the tuner records is the one unseen
    queries get, with each returned id re-scored exactly (PQ's own distances flatter it)."""
    data = clustered(20_300, 64, seed=1)
    vectors, queries = data[:20_000], data[20_000:]  # queries held out: never added
    ids = np.arange(100, 100 + len(vectors), dtype=np.int64)
    index = build_index("text", IndexPlan(factory, "ivf", 64), ids, vectors, "fp", 0.95)
    recorded = index.manifest.recall_at_10
    assert index.manifest.nprobe >= 1 and recorded is not None

    exact = faiss.IndexFlatIP(64)
    exact.add(vectors)
    exact_scores, _ = exact.search(queries, 10)
    _, found = index.search(queries, 10)
    assert set(found.ravel()) <= set(ids.tolist())
    rescored = -np.sort(-np.einsum("qd,qkd->qk", queries, vectors[found - 100]), axis=1)
    independent = recall_at_k(exact_scores, rescored)
    assert abs(recorded - independent) <= 0.05, (recorded, independent)
    # with the refine step from the float16 originals a compressed index meets it too
    assert recorded >= 0.95 and independent >= 0.92


def test_recall_is_tie_aware() -> None:
    exact = np.array([[0.9, 0.8, 0.8, 0.7]])
    assert recall_at_k(exact, np.array([[0.9, 0.8, 0.8, 0.7]]), k=4) == 1.0
    assert (
        recall_at_k(exact, np.array([[0.9, 0.8, 0.7, 0.7]]), k=4) == 0.75
    )  # a tie swap is fine, a miss is not


# ---- persistence


def test_save_load_roundtrip_mmap_and_fingerprint_check(tmp_path: Path) -> None:
    vectors = clustered(3000, 32, seed=3)
    ids = np.arange(len(vectors), dtype=np.int64) * 7
    for plan in (
        IndexPlan("IDMap2,Flat", "flat"),
        IndexPlan("IVF64,Flat", "ivf", 64),
        IndexPlan("IVF64,PQ16x4fs", "ivf", 64, 8),
    ):
        index = build_index("image", plan, ids, vectors, "model-a", 0.95)
        index.save(tmp_path)
        index_path, _ = paths(tmp_path, "image")
        assert index.manifest.checksum == file_checksum(index_path)
        assert not list(tmp_path.glob(".*"))  # no temp files left behind
        for read_only in (False, True):
            loaded = VectorIndex.load(tmp_path, "image", "model-a", read_only=read_only)
            assert (
                loaded is not None
                and loaded.count == 3000
                and loaded.manifest.factory == plan.factory
            )
            np.testing.assert_array_equal(
                loaded.search(vectors[:5], 3)[1], index.search(vectors[:5], 3)[1]
            )
        with pytest.raises(IndexFileError, match=r"model-a.*simmim index --rebuild"):
            VectorIndex.load(tmp_path, "image", "model-b")
    assert VectorIndex.load(tmp_path / "none", "image", "x") is None


def test_add_is_idempotent_and_remove_deletes(tmp_path: Path) -> None:
    for plan in (
        IndexPlan("IDMap2,Flat", "flat"),
        IndexPlan("IVF64,Flat", "ivf", 64),
        IndexPlan("IVF64,PQ8x4fs", "ivf", 64, 4),
    ):
        vectors = clustered(2000, 16, seed=4)
        ids = np.arange(2000, dtype=np.int64)
        index = build_index("text", plan, ids, vectors, "fp", 0.95)
        index.add(ids[:10], vectors[:10])  # re-adding must not duplicate
        assert index.count == 2000
        assert index.remove(np.array([3, 4, 99999], np.int64)) == 2
        assert index.count == 1998 and 3 not in set(index.ids().tolist())
        _, found = index.search(vectors[3:4], 5)
        assert 3 not in found


@pytest.mark.skipif(gpu_count() == 0, reason="no GPU FAISS on this machine")
def test_gpu_search_matches_cpu_and_saves_cpu_form(tmp_path: Path) -> None:
    vectors = clustered(5000, 32, seed=5)
    index = build_index(
        "fused", IndexPlan("IVF64,Flat", "ivf", 64), np.arange(5000), vectors, "fp", 0.95
    )
    cpu = index.index.search(vectors[:20], 5)[1]
    np.testing.assert_array_equal(index.search(vectors[:20], 5)[1], cpu)
    index.save(tmp_path)
    assert VectorIndex.load(tmp_path, "fused", "fp") is not None


# ---- the pipeline on the tiny model


@pytest.fixture
def world(engine: Engine, tiny_weights: Path, tmp_path: Path) -> tuple[Settings, Engine, Encoder]:
    settings = Settings(data_dir=tmp_path / "data", encoder=tiny_settings(tiny_weights))  # type: ignore[arg-type]
    return settings, engine, load_encoder(settings)


CAPTIONS = [
    "Acme Corp shares plunge after accounting probe",
    "Central bank raises interest rates by half a point",
    "Oil tanker stuck in canal disrupts supply chain",
    "Crypto exchange halts withdrawals amid liquidity crunch",
    "Chipmaker unveils faster processor for data centres",
    "Retailer cuts jobs as holiday sales disappoint",
    "Pharma group wins approval for new vaccine",
    "Automaker recalls electric cars over battery fires",
]


def seed_items(
    settings: Settings, engine: Engine, n: int = 24, *, text_only_every: int = 5
) -> list[int]:
    layout = DataLayout(settings.data_dir)
    layout.create()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with session_scope(session_factory(engine)) as session:
        sources = [
            Source(name=f"s{i}", kind=SourceKind.RSS, location=f"https://s{i}.example/rss")
            for i in range(2)
        ]
        session.add_all(sources)
        rows = []
        for i in range(n):
            sha = None
            if i % text_only_every:
                sha = f"{i:064x}"
                path = layout.image_path(sha)
                path.parent.mkdir(parents=True, exist_ok=True)
                picture(i).save(path, format="PNG")
            rows.append(
                Item(
                    source=sources[i % 2],
                    title=f"{CAPTIONS[i % len(CAPTIONS)]} ({i})",
                    text=None,
                    image_sha256=sha,
                    published_at=start + timedelta(days=i),
                    url=f"https://x.example/{i}",
                )
            )
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def test_ingest_then_search_finds_an_item_by_its_own_caption(
    world: tuple[Settings, Engine, Encoder],
) -> None:
    settings, engine, encoder = world
    ids = seed_items(settings, engine)
    summary = run_ingest(settings, engine, encoder)
    assert summary.indexed == len(ids) and summary.failed == 0
    assert summary.added == {"image": 19, "text": 24, "fused": 24}
    with session_scope(session_factory(engine)) as session:
        items = session.scalars(select(Item).order_by(Item.id)).all()
        assert all(i.status is ItemStatus.INDEXED for i in items)
        assert (
            items[1].indexed_spaces == 7
            and items[0].indexed_spaces == Space.TEXT.bit | Space.FUSED.bit
        )

    indexes = IndexSet(settings, encoder.fingerprint, encoder.dim, read_only=True)
    picture_6 = DataLayout(settings.data_dir).image_path(f"{6:064x}")
    caption = f"{CAPTIONS[6]} (6)"
    top = search(engine, encoder, indexes, text=caption, space="text", k=3)[0]
    assert (top.item_id, top.title, top.url) == (ids[6], caption, "https://x.example/6")
    # text + image together: the fused query of item 6 finds item 6 in the fused space
    assert (
        search(engine, encoder, indexes, text=caption, image=picture_6, space="fused", k=1)[
            0
        ].item_id
        == ids[6]
    )
    # a text-only item's fused vector is its text vector
    assert (
        search(engine, encoder, indexes, text=f"{CAPTIONS[5]} (5)", space="fused", k=1)[0].item_id
        == ids[5]
    )
    # image -> image: the same picture is its own nearest neighbour
    assert (
        search(engine, encoder, indexes, image=picture_6, space="image", k=1)[0].item_id == ids[6]
    )

    again = run_ingest(settings, engine, encoder)  # nothing pending, nothing to do
    assert again.indexed == 0 and again.requeued == 0 and again.removed == 0


def test_crash_between_index_save_and_db_commit_is_reconciled(
    world: tuple[Settings, Engine, Encoder],
) -> None:
    settings, engine, encoder = world
    ids = seed_items(settings, engine, n=12)
    run_ingest(settings, engine, encoder, batch=5, save_every_s=0)  # saves after every batch
    # Simulate the crash: vectors saved, but the database never marked these items indexed.
    with session_scope(session_factory(engine)) as session:
        session.execute(
            update(Item)
            .where(Item.id.in_(ids[:4]))
            .values(status=ItemStatus.PENDING, indexed_spaces=0)
        )
    summary = run_ingest(settings, engine, encoder)
    assert summary.removed > 0 and summary.indexed == 4
    indexes = IndexSet(settings, encoder.fingerprint, encoder.dim)
    fused = indexes.spaces["fused"]
    assert fused is not None and sorted(fused.ids().tolist()) == sorted(
        ids
    )  # no duplicates, none missing


def test_lost_index_files_are_restored_and_deleted_items_removed(
    world: tuple[Settings, Engine, Encoder],
) -> None:
    settings, engine, encoder = world
    ids = seed_items(settings, engine, n=10)
    run_ingest(settings, engine, encoder)
    for path in DataLayout(settings.data_dir).indexes.glob("*"):
        path.unlink()
    with session_scope(session_factory(engine)) as session:
        session.execute(delete(Item).where(Item.id == ids[0]))
    summary = run_ingest(settings, engine, encoder)
    assert summary.requeued == 9 and summary.indexed == 9
    indexes = IndexSet(settings, encoder.fingerprint, encoder.dim)
    assert all(
        ix is not None and ids[0] not in set(ix.ids().tolist()) for ix in indexes.spaces.values()
    )
    assert (
        search(engine, encoder, indexes, text=f"{CAPTIONS[3]} (3)", space="text", k=1)[0].item_id
        == ids[3]
    )
    # and an item deleted after indexing leaves the indexes on the next run
    with session_scope(session_factory(engine)) as session:
        session.execute(delete(Item).where(Item.id.in_([ids[5], ids[6]])))
    assert run_ingest(settings, engine, encoder).removed == 2 + 3  # text-only 5; 6 in all three


def test_filters_still_return_k_and_collapse_near_duplicates(
    world: tuple[Settings, Engine, Encoder],
) -> None:
    settings, engine, encoder = world
    ids = seed_items(settings, engine, n=40)
    run_ingest(settings, engine, encoder)
    indexes = IndexSet(settings, encoder.fingerprint, encoder.dim)
    with session_scope(session_factory(engine)) as session:
        second_source = session.scalar(select(Source.id).where(Source.name == "s1"))
    filters = SearchFilters(source_ids=[second_source], since=datetime(2026, 3, 20, tzinfo=UTC))
    results = search(
        engine,
        encoder,
        indexes,
        text=CAPTIONS[0],
        space="text",
        k=10,
        filters=filters,
        collapse=False,
    )
    assert len(results) == 10  # 10 match: odd items from day 19 on
    assert all(
        r.source_id == second_source and r.published_at and r.published_at >= filters.since
        for r in results
    )  # type: ignore[operator]
    # Items 0, 8, 16, 24, 32 share a caption apart from their number: collapse keeps one.
    plain = search(engine, encoder, indexes, text=CAPTIONS[0], space="text", k=40, collapse=False)
    collapsed = search(engine, encoder, indexes, text=CAPTIONS[0], space="text", k=40)
    assert len(collapsed) < len(plain)
    assert ids[0] in {r.item_id for r in plain}
    with pytest.raises(SearchError, match="needs a text, an image"):
        search(engine, encoder, indexes, space="text")


def test_the_same_item_from_several_sources_is_one_result_with_also_in(
    world: tuple[Settings, Engine, Encoder],
) -> None:
    settings, engine, encoder = world
    seed_items(settings, engine, n=16)
    headline = "Regulators fine Nordwind Energy over pipeline leak"
    with session_scope(session_factory(engine)) as session:
        wires = [
            Source(name=name, kind=SourceKind.RSS, location=f"https://{name}.example/rss")
            for name in ("wire-a", "wire-b", "wire-c")
        ]
        session.add_all(wires)
        # The same headline three times: verbatim, re-cased and re-punctuated.
        for source, title in zip(
            wires,
            [headline, headline.upper(), headline.replace(" over", ", over") + "."],
            strict=True,
        ):
            session.add(Item(source=source, title=title, url=f"https://{source.name}.example/1"))
    run_ingest(settings, engine, encoder)
    indexes = IndexSet(settings, encoder.fingerprint, encoder.dim)
    every = search(engine, encoder, indexes, text=headline, space="text", k=21, collapse=False)
    wires = [r for r in every if r.source_name.startswith("wire-")]
    assert sorted(r.source_name for r in wires) == ["wire-a", "wire-b", "wire-c"]
    folded = search(engine, encoder, indexes, text=headline, space="text", k=5)
    top = folded[0]
    assert len(top.duplicates) == 2 and sorted([top.source_name, *top.also_in]) == [
        "wire-a",
        "wire-b",
        "wire-c",
    ]
    assert top.score == max(r.score for r in wires)  # the group keeps its best score
    assert len(folded) == 5  # still k results: the search fetched further
    assert not {r.item_id for r in folded[1:]} & {top.item_id, *top.duplicates}


def test_growth_rebuilds_the_index_type(
    world: tuple[Settings, Engine, Encoder], monkeypatch: pytest.MonkeyPatch
) -> None:
    import indexer.index.chooser as chooser

    settings, engine, encoder = world
    monkeypatch.setattr(chooser, "FLAT_MAX", 25)
    monkeypatch.setattr(chooser, "ivf_lists", lambda count: 4)
    seed_items(settings, engine, n=30)
    summary = run_ingest(settings, engine, encoder)
    assert set(summary.rebuilt) == {"text", "fused"}  # 24 image vectors stay flat
    indexes = IndexSet(settings, encoder.fingerprint, encoder.dim)
    assert (
        indexes.spaces["text"] is not None
        and indexes.spaces["text"].manifest.factory == "IVF4,Flat"
    )
    assert indexes.spaces["text"].manifest.recall_at_10 is not None
    assert (
        search(engine, encoder, indexes, text=f"{CAPTIONS[2]} (2)", space="text", k=1)[0].title
        == f"{CAPTIONS[2]} (2)"
    )


def test_index_and_search_commands(
    tiny_weights: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cli: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.cli import main
    from simmim import migrations
    from simmim.db import make_engine

    monkeypatch.setenv("SIMMIM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIMMIM_ENCODER__MODEL", "simmim-tiny")
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", str(tiny_weights))
    monkeypatch.setenv("SIMMIM_ENCODER__CPU_INT8", "false")
    settings = Settings()
    engine = make_engine(settings.database_url)
    migrations.upgrade(engine)
    seed_items(settings, engine, n=10)

    assert "indexed 10 item(s)" in cli("index")
    status = cli("index", "status")
    assert "IDMap2" in status and "simmim-tiny" in status, status
    out = cli("search", f"{CAPTIONS[1]} (1)", "--space", "text", "-k", "3", "--no-collapse")
    assert "Central bank raises" in out and "3 result(s)" in out
    like = cli("search", "--like", "2", "--space", "text", "-k", "2", "--no-collapse")
    assert "2 result(s) in the text space, more like item 2" in like
    # a model change makes the old index unusable until rebuilt
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", "none")
    with pytest.raises(SystemExit) as info:
        main(["search", "rates"])
    assert info.value.code == 2 and "simmim index --rebuild" in capsys.readouterr().err
    assert "indexed 10 item(s)" in cli("index", "--rebuild")


@pytest.mark.parametrize("refine", [True, False])
def test_the_recall_recorded_for_a_compressed_index_survives_an_independent_check(
    refine: bool,
) -> None:
    """PQ loses neighbours; the tuner must say how many, measured on the original vectors.
    With its float16 originals the refine step wins them back, and says so truly."""
    rng = np.random.default_rng(7)
    dim, n = 64, 20_000
    centres = rng.standard_normal((60, dim)).astype(np.float32)
    data = centres[rng.integers(0, 60, n + 1000)] + 0.6 * rng.standard_normal((n + 1000, dim))
    data = (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)
    vectors, held_out = data[:n], data[n:]
    ids = np.arange(1, n + 1, dtype=np.int64)
    index = build_index("fused", IndexPlan("IVF32,PQ4", "ivf", 32, 4), ids, vectors, "fp", 0.95)
    if not refine:  # a PQ index as built before the originals were kept
        index.originals, index.manifest.originals, index.manifest.refine = None, "", 0
        index.tune(ids[rng.choice(n, 500, replace=False)], 0.95, originals=(ids, vectors))
    recorded = index.manifest.recall_at_10
    assert index.manifest.recall_basis.startswith("original vectors")

    # independent: queries never stored, exact top 10 over the originals, and each id the
    # index returns re-scored exactly (so ties and PQ's own distances play no part)
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    truth, _ = exact.search(held_out, 10)
    _, found = index.search(held_out, 10)
    rescored = np.einsum("qd,qkd->qk", held_out, vectors[found - 1])
    rescored = -np.sort(-rescored, axis=1)
    independent = recall_at_k(truth, rescored)
    assert recorded is not None
    if refine:
        assert index.manifest.refine > 1 and recorded >= 0.95 and independent >= 0.93
        assert abs(recorded - independent) <= 0.02, (recorded, independent)
    else:
        assert recorded < 0.9, "4-byte codes of 64-d vectors lose neighbours"
        assert abs(recorded - independent) <= 0.05, (recorded, independent)


def test_a_compressed_index_keeps_float16_originals_that_rebuilds_start_from(
    tmp_path: Path,
) -> None:
    vectors = clustered(8000, 64, seed=9)
    ids = np.arange(10, 8010, dtype=np.int64)
    index = build_index("text", IndexPlan("IVF32,PQ8", "ivf", 32, 8), ids, vectors, "fp", 0.95)
    first = index.manifest.recall_at_10
    assert index.manifest.originals == "float16" and not index.manifest.lossy
    index.save(tmp_path)
    f16 = tmp_path / "text.f16"
    assert f16.is_file() and f16.stat().st_blocks * 512 < 8010 * 64 * 2 * 1.1
    for read_only in (False, True):
        loaded = VectorIndex.load(tmp_path, "text", "fp", read_only=read_only)
        assert loaded is not None and loaded.originals is not None
        back = loaded.vectors(ids[:100])
        cosine = np.sum(back * vectors[:100], axis=1) / np.linalg.norm(back, axis=1)
        assert cosine.min() > 0.9999  # float16 of the original, not the PQ decoding
        np.testing.assert_array_equal(
            loaded.search(vectors[:5], 5)[1], index.search(vectors[:5], 5)[1]
        )
    # a rebuild (growth, migration) from the stored vectors measures the same recall
    again = build_index(
        "text", IndexPlan("IVF32,PQ8", "ivf", 32, 8), ids, index.vectors(ids), "fp", 0.95
    )
    assert again.manifest.recall_at_10 is not None and first is not None
    assert abs(again.manifest.recall_at_10 - first) <= 0.02
    loaded = VectorIndex.load(tmp_path, "text", "fp")
    assert loaded is not None and loaded.remove(ids[:3]) == 3
    assert not loaded.vectors(ids[:3]).any()  # removed: its originals too
    loaded.add(ids[:1], vectors[:1])
    loaded.save(tmp_path)
    reread = VectorIndex.load(tmp_path, "text", "fp", read_only=True)
    assert reread is not None and reread.vectors(ids[:1]).any()
    f16.unlink()
    with pytest.raises(IndexFileError, match=r"float16 vectors.*missing"):
        VectorIndex.load(tmp_path, "text", "fp")
