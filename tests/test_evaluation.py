"""`simmim eval retrieval`: held-out items judge search on the user's own corpus."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from sqlalchemy import Engine

from encoder.train.evaluation import HELD_OUT_PERMILLE, held_out, last_report, ranking
from encoder.train.pairs import Pair
from simmim.db import make_engine, session_factory, session_scope
from simmim.migrations import upgrade
from simmim.models import Item, ItemStatus, Source, SourceKind
from simmim.paths import DataLayout
from simmim.settings import Settings
from tests.encoder_fixtures import tiny_settings
from tests.test_training import boilerplate_corpus


def test_ranking_matches_a_hand_computation() -> None:
    gallery = torch.eye(4)
    # Query 1 points at gallery row 2 and ties rows 0, 1, 3 at 0: its right answer
    # ranks 4th (a tie counts against); the others rank 1st.
    queries = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    assert ranking(queries, gallery) == {
        "r1": 0.75,
        "r5": 1.0,
        "r10": 1.0,
        "mrr": pytest.approx((1 + 1 / 4 + 1 + 1) / 4),
    }


def test_any_item_with_the_same_picture_answers_an_image_query() -> None:
    from encoder.train.training import key_codes, same_code

    # Items 0 and 1 carry the same picture (a site's stock photo): a query by that picture
    # finds a right answer first whichever of the two scores higher; item 2's query has
    # two wrong rows (0 and 1) at least as high as its only right one, so it ranks 3rd.
    gallery = torch.tensor([[1.0, 0, 0], [0.8, 0.6, 0], [0.6, 0.8, 0]])
    queries = torch.tensor([[0.8, 0.6, 0], [1.0, 0, 0], [0.6, 0.0, 0.8]])
    relevant = same_code(key_codes(["stock", "stock", "own"]))
    assert relevant.tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    assert ranking(queries, gallery, relevant) == {
        "r1": pytest.approx(2 / 3),
        "r5": 1.0,
        "r10": 1.0,
        "mrr": pytest.approx((1 + 1 + 1 / 3) / 3),
    }
    assert ranking(queries, gallery)["r1"] == 0.0  # without it, each copy counts as wrong


def test_the_held_out_share_is_stable_and_about_a_fifth() -> None:
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(10_000)]
    chosen = [s for s in shas if held_out(s)]
    assert abs(len(chosen) / 10_000 - HELD_OUT_PERMILLE / 1000) < 0.02
    assert chosen == [s for s in shas if held_out(s)]  # no state, no randomness


def store_items(
    layout: DataLayout, engine: Engine, pairs: list[Pair], source_name: str = "wire"
) -> list[str]:
    """The pairs as indexed items of one new source, images in the data dir; their hashes."""
    layout.create()
    shas = []
    with session_scope(session_factory(engine)) as session:
        location = f"https://{source_name}.example/rss"
        source = Source(name=source_name, kind=SourceKind.RSS, location=location)
        session.add(source)
        for i, pair in enumerate(pairs):
            sha = hashlib.sha256(pair.image.read_bytes()).hexdigest()
            shas.append(sha)
            path = layout.image_path(sha)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pair.image.read_bytes())
            session.add(
                Item(
                    source=source,
                    title=pair.text,
                    image_sha256=sha,
                    url=f"https://{source_name}.example/{i}",
                    status=ItemStatus.INDEXED,
                )
            )
    return shas


def test_self_training_is_kept_only_when_it_beats_the_current_space(
    tiny_weights: Path, tmp_path: Path
) -> None:
    from encoder import load_encoder
    from encoder.train.self_training import acceptance_r5, attempts, self_train_fusion
    from encoder.train.training import FusionTrainConfig

    settings = Settings(data_dir=tmp_path / "data", encoder=tiny_settings(tiny_weights))  # type: ignore[arg-type]
    engine = make_engine(settings.database_url)
    upgrade(engine)
    layout = DataLayout(settings.data_dir)
    store_items(layout, engine, boilerplate_corpus(tmp_path, 250))
    base = load_encoder(settings)
    config = FusionTrainConfig(epochs=25, patience=6)

    # A corpus with learnable structure: the candidate beats the CLIP mean and is kept.
    first = self_train_fusion(base, base, engine, layout, min_pairs=100, config=config)
    assert first.accepted and first.before and first.after, first.reason
    assert acceptance_r5(first.after.directions) >= acceptance_r5(first.before.clip_mean) + 0.02
    assert sorted(layout.models.glob("fusion-self-*")) == [Path(str(first.checkpoint))]

    # The same again, now that the trained fusion is in use: nothing left to win by the
    # margin, so the candidate is dropped and nothing changes.
    settings.encoder.fusion_checkpoint = Path(str(first.checkpoint))
    current = load_encoder(settings)
    second = self_train_fusion(base, current, engine, layout, min_pairs=100, config=config)
    assert not second.accepted and second.after is not None, second.reason
    assert sorted(layout.models.glob("fusion-self-*")) == [Path(str(first.checkpoint))]
    assert [a["accepted"] for a in attempts(layout)] == [True, False]

    # Too few pairs: nothing is trained, and the attempt says why.
    small = self_train_fusion(base, current, engine, layout, min_pairs=10_000)
    assert not small.accepted and "needs 10000" in small.reason and small.after is None


def test_eval_retrieval_command_and_status(
    tiny_weights: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    db_url: str,
) -> None:
    from app.cli import main

    monkeypatch.setenv("SIMMIM_DATABASE__URL", db_url)  # the embedded default and PostgreSQL
    monkeypatch.setenv("SIMMIM_ENCODER__MODEL", "simmim-tiny")
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", str(tiny_weights))
    monkeypatch.setenv("SIMMIM_ENCODER__CPU_INT8", "false")
    settings = Settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    layout = DataLayout(settings.data_dir)
    shas = store_items(layout, engine, boilerplate_corpus(tmp_path, 60))

    def run(*args: str) -> str:
        with pytest.raises(SystemExit) as info:
            main(list(args))
        assert info.value.code in (0, None)
        return capsys.readouterr().out

    shown = json.loads(run("eval", "retrieval", "--json", "--space", "fused"))
    expected_n = sum(held_out(s) for s in shas)
    assert shown["n"] == expected_n and shown["fusion"] == "clip-mean"
    assert set(shown["directions"]) == {"fused_text_to_item", "fused_image_to_item"}
    assert shown["clip_mean"] == shown["directions"]  # no fusion trained: the same space
    kept = last_report(layout)
    assert kept is not None and kept.n == expected_n
    table = run("eval", "retrieval", "--sample", "5")
    assert "retrieval on 5 held-out items" in table and "text to image" in table
    assert "retrieval" in run("status") and "R@5" in run("status")
    with pytest.raises(SystemExit) as info:
        main(["eval", "retrieval", "--space", "audio"])
    assert info.value.code == 2
    tried = json.loads(run("train-fusion", "--auto", "--epochs", "2", "--json"))
    assert tried["held_out_pairs"] == expected_n and tried["train_pairs"] == 60 - expected_n
    assert tried["after"]["n"] == expected_n and isinstance(tried["accepted"], bool)
