"""The periodic self-training step: it waits for new items, trains, and switches the live
index to a fusion that wins, while search keeps answering; every process follows."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from app.api.state import ApiState
from app.cli.context import serving_encoder
from encoder.fingerprint import find_fusion, split_fingerprint
from encoder.train.self_training import attempts
from indexer.fusion_switch import fusion_status
from indexer.index import open_stores
from indexer.live_fusion import indexed_fingerprint
from indexer.pipeline.writer import IndexWriter
from indexer.search import search
from monitor.cycle import Runtime
from simmim.db import make_engine, session_factory, session_scope
from simmim.migrations import upgrade
from simmim.models import Item, ItemStatus
from simmim.paths import DataLayout
from simmim.settings import Settings
from tests.encoder_fixtures import tiny_settings
from tests.test_evaluation import store_items
from tests.test_training import boilerplate_corpus


def _pending_corpus(
    settings: Settings, engine: Engine, folder: Path, n: int, seed: int = 0
) -> None:
    folder.mkdir(exist_ok=True)
    pairs = boilerplate_corpus(folder, n, seed)
    store_items(DataLayout(settings.data_dir), engine, pairs, source_name=f"wire-{seed}")
    with session_scope(session_factory(engine)) as session:
        session.execute(
            update(Item)
            .where(Item.url.like(f"https://wire-{seed}.%"))
            .values(status=ItemStatus.PENDING)
        )


def _indexed_corpus(
    weights: Path, folder: Path, n: int, db_url: str | None, **fusion: object
) -> tuple[Settings, Engine, Runtime]:
    """n image+text items of the boilerplate corpus, indexed by the monitor's index step."""
    database = {"url": db_url} if db_url else {}
    settings = Settings(
        data_dir=folder / "data",
        database=database,  # type: ignore[arg-type]
        encoder=tiny_settings(weights),  # type: ignore[arg-type]
        fusion=fusion,  # type: ignore[arg-type]
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    _pending_corpus(settings, engine, folder, n)
    runtime = Runtime(settings, engine)
    assert runtime.run_step("index").ok
    return settings, engine, runtime


def test_self_training_switches_the_live_index_and_every_process_follows(
    tiny_weights: Path, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine, runtime = _indexed_corpus(
        tiny_weights, tmp_path, 250, db_url, min_pairs=100, epochs=25
    )
    layout = DataLayout(settings.data_dir)
    old = indexed_fingerprint(settings)
    assert old is not None and old.endswith("+fusion:none")
    api = ApiState(settings, engine=engine)  # a serving process started before the switch
    old_encoder = api.encoder
    assert old_encoder.fingerprint == old and api.stores().fingerprint == old

    # While the new space is encoded beside it, the live index answers from the old one.
    answered: list[int] = []
    add = IndexWriter.add

    def add_then_search(writer: IndexWriter, *args: object) -> None:
        add(writer, *args)  # type: ignore[arg-type]
        with closing(open_stores(settings, old, old_encoder.dim, read_only=True)) as live:
            hits = search(engine, old_encoder, live, text="alpha bravo", space="fused", k=5)
        answered.append(len(hits))

    monkeypatch.setattr(IndexWriter, "add", add_then_search)
    run = runtime.run_step("fusion")
    monkeypatch.setattr(IndexWriter, "add", add)
    assert run.ok and run.summary["accepted"], run.summary
    assert run.summary["reindexed"] == 250 and answered and set(answered) == {5}

    new = indexed_fingerprint(settings)
    assert new is not None and new != old
    backbone, fusion = split_fingerprint(new)
    assert backbone == split_fingerprint(old)[0] and fusion.startswith("fusion:sha256:")
    checkpoint = find_fusion(layout.models, fusion)
    assert checkpoint is not None and checkpoint.name.startswith("fusion-self-")
    assert attempts(layout)[-1]["switched"] == {"reindexed": 250, "fingerprint": new}

    # Every process follows: the serving one at its next look at the stores (towers kept),
    # a new one as it loads, the writer at its next step.
    monkeypatch.setattr("app.api.state.STAMP_CHECK_S", 0.0)
    assert api.stores().fingerprint == new and api.encoder.fingerprint == new
    assert api.encoder.backbone is old_encoder.backbone
    assert serving_encoder(settings).fingerprint == new
    assert runtime.serving_encoder().fingerprint == new
    _pending_corpus(settings, engine, tmp_path / "more", 3, seed=1)
    assert runtime.run_step("index").summary["indexed"] >= 3
    status = fusion_status(settings, engine)
    assert status.in_use == checkpoint.name and "self-training on" in status.line()
    assert "last attempt" in status.line() and "put in use" in status.line()

    # Nothing new since: the next tick waits and changes nothing.
    waited = runtime.run_step("fusion")
    assert waited.ok and "new image+text items of 100" in str(waited.summary["waiting"])
    assert indexed_fingerprint(settings) == new and len(attempts(layout)) == 1


def test_self_training_off_or_an_explicit_fusion_is_left_alone(
    tiny_weights: Path, tmp_path: Path
) -> None:
    off = Settings(
        data_dir=tmp_path / "data",
        encoder=tiny_settings(tiny_weights),  # type: ignore[arg-type]
        fusion={"self_train": False},  # type: ignore[arg-type]
    )
    engine = make_engine(off.database_url)
    upgrade(engine)
    assert "off" in str(Runtime(off, engine).run_step("fusion").summary["waiting"])
    explicit = tmp_path / "mine.safetensors"
    chosen = off.model_copy(
        update={
            "fusion": off.fusion.model_copy(update={"self_train": True}),
            "encoder": off.encoder.model_copy(update={"fusion_checkpoint": explicit}),
        }
    )
    summary = Runtime(chosen, engine).fusion()
    assert "FUSION_CHECKPOINT is set" in str(summary["waiting"])
    assert not fusion_status(chosen, engine).self_train
    assert attempts(DataLayout(off.data_dir)) == []


@pytest.mark.parametrize("self_train", [True, False])
def test_workers_run_self_training_as_a_periodic_task(
    postgres_url: str, tmp_path: Path, self_train: bool
) -> None:
    from monitor.worker.tasks import build_app

    settings = Settings(
        data_dir=tmp_path / "data",
        database={"url": postgres_url},  # type: ignore[arg-type]
        fusion={"self_train": self_train, "every_s": 7200},  # type: ignore[arg-type]
    )
    app = build_app(Runtime(settings, make_engine(postgres_url)))
    task = app.tasks.get("simmim.self_train_fusion")
    assert (task is not None) is self_train
    if task is not None:
        assert task.queue == "index" and task.lock == "fusion"
        periodic = {p.periodic_id: p for p in app.periodic_registry.periodic_tasks.values()}
        assert periodic["fusion"].cron == "0 */2 * * * 0"


def test_a_candidate_that_does_not_win_changes_nothing(tiny_weights: Path, tmp_path: Path) -> None:
    settings, _, runtime = _indexed_corpus(
        tiny_weights, tmp_path, 150, None, min_pairs=100, epochs=5, margin=0.9
    )
    layout = DataLayout(settings.data_dir)
    before = indexed_fingerprint(settings)
    files = sorted(p.name for p in layout.indexes.iterdir())
    run = runtime.run_step("fusion")
    assert run.ok and run.summary["accepted"] is False and "reindexed" not in run.summary
    assert "not better by 0.9" in str(run.summary["reason"])
    assert (
        indexed_fingerprint(settings) == before and list(layout.models.glob("*.safetensors")) == []
    )
    assert sorted(p.name for p in layout.indexes.iterdir()) == files
    tried = attempts(layout)
    assert len(tried) == 1 and tried[0]["corpus_items"] == 150 and tried[0]["switched"] is None
    assert runtime.run_step("fusion").summary["waiting"]  # the same items are not tried again
