"""Indexes never vanish: a rebuild is built beside the live set and swapped in, a crash at
any point leaves a set search can read, damaged files are found, temp files are swept."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from encoder import Encoder, load_encoder
from indexer.index import IndexSet
from indexer.index import folder as index_folder
from indexer.index.store import IndexFileError, built_manifests
from indexer.pipeline.runner import run_ingest
from indexer.search import search
from simmim import migrations
from simmim.db import make_engine, session_factory, session_scope
from simmim.files import TEMP_PREFIX
from simmim.models import SPACES, Item, ItemStatus
from simmim.paths import DataLayout
from simmim.settings import Settings
from tests.encoder_fixtures import tiny_settings
from tests.test_index import CAPTIONS, seed_items


@pytest.fixture
def world(engine: Engine, tiny_weights: Path, tmp_path: Path) -> tuple[Settings, Engine, Encoder]:
    settings = Settings(data_dir=tmp_path / "data", encoder=tiny_settings(tiny_weights))  # type: ignore[arg-type]
    return settings, engine, load_encoder(settings)


def agreement(settings: Settings, engine: Engine, encoder: Encoder) -> None:
    """Every item the database calls indexed is in exactly the spaces it names, no more."""
    indexes = IndexSet(settings, encoder.fingerprint, encoder.dim)
    with session_scope(session_factory(engine)) as session:
        rows = session.execute(select(Item.id, Item.status, Item.indexed_spaces)).all()
    for space in SPACES:
        index = indexes.spaces[space]
        held = set(index.ids().tolist()) if index is not None else set()
        vouched = {
            i for i, status, bits in rows if status is ItemStatus.INDEXED and bits & space.bit
        }
        assert held == vouched, space
    assert all(status is not ItemStatus.PENDING for _, status, _ in rows)


def test_a_rebuild_that_dies_before_the_swap_leaves_the_old_set(
    world: tuple[Settings, Engine, Encoder], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine, encoder = world
    seed_items(settings, engine, n=12)
    run_ingest(settings, engine, encoder)
    before = built_manifests(DataLayout(settings.data_dir).indexes)

    def crash(live: Path) -> None:
        raise KeyboardInterrupt("killed mid-rebuild")

    monkeypatch.setattr("indexer.index.index_set.swap_in", crash)
    with pytest.raises(KeyboardInterrupt):
        run_ingest(settings, engine, encoder, rebuild=True)
    live = DataLayout(settings.data_dir).indexes
    assert built_manifests(live) == before, "the live set was not touched"
    assert index_folder.staging_of(live).exists()  # the half-built set, for the sweep
    indexes = IndexSet(settings, encoder.fingerprint, encoder.dim, read_only=True)
    hit = search(engine, encoder, indexes, text=f"{CAPTIONS[1]} (1)", space="text", k=1)
    assert hit and hit[0].title.startswith(CAPTIONS[1])
    monkeypatch.undo()
    run_ingest(settings, engine, encoder)
    assert not index_folder.staging_of(live).exists()
    agreement(settings, engine, encoder)


def test_a_swap_cut_short_is_finished_and_readers_meanwhile_read_a_whole_set(
    world: tuple[Settings, Engine, Encoder],
) -> None:
    settings, engine, encoder = world
    seed_items(settings, engine, n=10)
    run_ingest(settings, engine, encoder)
    live = DataLayout(settings.data_dir).indexes
    staging = index_folder.start_staging(live)
    for path in live.iterdir():
        (staging / path.name).write_bytes(path.read_bytes())
    (staging / index_folder.COMPLETE).write_bytes(b"")
    os.rename(live, index_folder.previous_of(live))  # the crash: between the two renames
    assert not live.exists()
    reader = IndexSet(settings, encoder.fingerprint, encoder.dim, read_only=True)
    assert reader.folder == staging and reader.spaces[SPACES[2]] is not None
    run_ingest(settings, engine, encoder)
    assert live.is_dir() and not staging.exists() and not index_folder.previous_of(live).exists()
    agreement(settings, engine, encoder)


def test_damaged_index_files_are_found(world: tuple[Settings, Engine, Encoder]) -> None:
    settings, engine, encoder = world
    seed_items(settings, engine, n=10)
    run_ingest(settings, engine, encoder)
    live = DataLayout(settings.data_dir).indexes
    path = live / "text.faiss"
    data = bytearray(path.read_bytes())
    rng = random.Random(4)
    for offset in rng.sample(range(len(data)), min(400, len(data))):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFileError, match="damaged"):
        IndexSet(settings, encoder.fingerprint, encoder.dim, read_only=True)
    health = built_manifests(live, verify=True)
    assert health["text"]["health"].startswith("DAMAGED") and health["image"]["health"] == "ok"
    summary = run_ingest(settings, engine, encoder, rebuild=True)  # the fix it names
    assert summary.indexed == 10
    assert built_manifests(live, verify=True)["text"]["health"] == "ok"


def test_temp_files_of_interrupted_writes_are_swept(
    world: tuple[Settings, Engine, Encoder],
) -> None:
    settings, engine, encoder = world
    seed_items(settings, engine, n=4)
    layout = DataLayout(settings.data_dir)
    layout.create()
    leftovers = [
        layout.indexes / f"{TEMP_PREFIX}text.faiss.abc123",
        layout.images / "ab" / f"{TEMP_PREFIX}abcdef.x1",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    run_ingest(settings, engine, encoder)
    assert not leftovers[0].exists()
    from indexer.crawl import crawl

    crawl(settings, engine, source_ids=[10_000])  # no such source: only the sweep runs
    assert not leftovers[1].exists()


def test_kill_during_rebuild_never_leaves_search_without_an_index(
    tiny_weights: Path, tmp_path: Path
) -> None:
    """kill -9 a real `simmim index --rebuild` at random points, ten times: search always
    answers, and after the next plain run database and indexes agree."""
    env = {
        **os.environ,
        "SIMMIM_DATA_DIR": str(tmp_path / "data"),
        "SIMMIM_ENCODER__MODEL": "simmim-tiny",
        "SIMMIM_ENCODER__PRETRAINED": str(tiny_weights),
        "SIMMIM_ENCODER__CPU_INT8": "false",
        "SIMMIM_ENCODER__BATCH_SIZE": "4",
    }
    for name in [n for n in env if n.startswith("SIMMIM_DATABASE")]:
        env.pop(name)
    settings = Settings(
        data_dir=tmp_path / "data",
        encoder=tiny_settings(tiny_weights),  # type: ignore[arg-type]
    )
    engine = make_engine(settings.database_url)
    migrations.upgrade(engine)
    seed_items(settings, engine, n=120)
    simmim = str(Path(sys.executable).parent / "simmim")

    def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [simmim, *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    assert cli("index").returncode == 0
    encoder = load_encoder(settings)
    staging = index_folder.staging_of(DataLayout(settings.data_dir).indexes)
    rng = random.Random(19)
    kills = 0  # killed while the new set was being built or swapped in

    def identity() -> tuple[int, int] | None:
        try:
            info = staging.stat()
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns

    for _ in range(10):
        leftover = identity()  # a killed run's half-built set, until this run replaces it
        process = subprocess.Popen(
            [simmim, "index", "--rebuild"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while identity() in (None, leftover) and process.poll() is None:
                assert time.monotonic() < deadline, "the rebuild never started"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.8))  # somewhere in encoding, saving or swapping
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                kills += 1
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        # search answers right after the kill, before any repair
        indexes = IndexSet(settings, encoder.fingerprint, encoder.dim, read_only=True)
        found = search(engine, encoder, indexes, text=f"{CAPTIONS[2]} (2)", space="text", k=3)
        assert found, "search found nothing after a killed rebuild"
    assert kills >= 5, "most rebuilds were killed mid-way"
    assert cli("index").returncode == 0
    agreement(settings, engine, encoder)
    fused = IndexSet(settings, encoder.fingerprint, encoder.dim).spaces[SPACES[2]]
    assert fused is not None and len(np.unique(fused.ids())) == 120
    engine.dispose()
