"""Bulk encoding on a local Ray: the same vectors and item marks as the in-process path."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from encoder import load_encoder
from indexer.index import SPACES, open_stores
from indexer.pipeline.ray_stage import RayOptions, ray_stage
from indexer.pipeline.runner import run_ingest
from simmim.db import session_factory, session_scope
from simmim.models import Item
from simmim.paths import DataLayout
from simmim.settings import Settings
from tests.encoder_fixtures import tiny_settings
from tests.test_index import seed_items


@pytest.fixture(autouse=True)
def quiet_local_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _snapshot(settings: Settings, engine: Engine, fingerprint: str, dim: int) -> tuple:
    with session_scope(session_factory(engine)) as session:
        marks = sorted(
            session.execute(select(Item.id, Item.status, Item.indexed_spaces, Item.error)).all()
        )
    vectors = {}
    with closing(open_stores(settings, fingerprint, dim, read_only=True)) as stores:
        for space in SPACES:
            ids = np.sort(stores.get(space).ids())
            vectors[space] = (ids, stores.get(space).vectors(ids))
    return marks, vectors


def test_a_ray_rebuild_gives_the_in_process_vectors(
    db_url: str, engine: Engine, tiny_weights: Path, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database={"url": db_url},  # type: ignore[arg-type]
        encoder=tiny_settings(tiny_weights),  # type: ignore[arg-type]
    )
    ids = seed_items(settings, engine, n=30)
    broken = DataLayout(settings.data_dir).image_path(f"{999:064x}")
    broken.write_bytes(b"not an image")
    with session_scope(session_factory(engine)) as session:
        item = session.get(Item, ids[3])
        assert item is not None
        item.image_sha256 = f"{999:064x}"  # unreadable: indexed by its text, with the reason
    encoder = load_encoder(settings)

    here = run_ingest(settings, engine, encoder)
    assert here.indexed == 30 and here.unreadable_images == 1
    marks_here, vectors_here = _snapshot(settings, engine, encoder.fingerprint, encoder.dim)

    stage = ray_stage(settings, engine, RayOptions(actors=2, batch=7))
    on_ray = run_ingest(settings, engine, encoder, rebuild=True, stage=stage)
    assert on_ray.indexed == 30 and on_ray.unreadable_images == 1
    marks_ray, vectors_ray = _snapshot(settings, engine, encoder.fingerprint, encoder.dim)

    assert marks_ray == marks_here
    assert any("image" in (error or "") for *_, error in marks_ray)
    for space in SPACES:
        ids_here, matrix_here = vectors_here[space]
        ids_ray, matrix_ray = vectors_ray[space]
        assert np.array_equal(ids_ray, ids_here) and len(ids_here)
        np.testing.assert_allclose(matrix_ray, matrix_here, atol=1e-5)
