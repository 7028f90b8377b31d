"""`simmim eval retrieval`: held-out items judge search on the user's own corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from encoder.evaluation import HELD_OUT_PERMILLE, held_out, last_report, ranking
from simmim.db import make_engine, session_factory, session_scope
from simmim.migrations import upgrade
from simmim.models import Item, ItemStatus, Source, SourceKind
from simmim.paths import DataLayout
from simmim.settings import Settings
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


def test_the_held_out_share_is_stable_and_about_a_fifth() -> None:
    ids = range(1, 10_001)
    chosen = [i for i in ids if held_out(i)]
    assert abs(len(chosen) / 10_000 - HELD_OUT_PERMILLE / 1000) < 0.02
    assert chosen == [i for i in ids if held_out(i)]  # no state, no randomness


def test_eval_retrieval_command_and_status(
    tiny_weights: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app.cli import main

    monkeypatch.setenv("SIMMIM_ENCODER__MODEL", "simmim-tiny")
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", str(tiny_weights))
    monkeypatch.setenv("SIMMIM_ENCODER__CPU_INT8", "false")
    settings = Settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    layout = DataLayout(settings.data_dir)
    layout.create()
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    with session_scope(session_factory(engine)) as session:
        source = Source(name="wire", kind=SourceKind.RSS, location="https://x.example/rss")
        session.add(source)
        for i, pair in enumerate(boilerplate_corpus(pictures, 60)):
            sha = f"{i:064x}"
            path = layout.image_path(sha)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pair.image.read_bytes())
            session.add(
                Item(
                    source=source,
                    title=pair.text,
                    image_sha256=sha,
                    url=f"https://x.example/{i}",
                    status=ItemStatus.INDEXED,
                )
            )

    def run(*args: str) -> str:
        with pytest.raises(SystemExit) as info:
            main(list(args))
        assert info.value.code in (0, None)
        return capsys.readouterr().out

    shown = json.loads(run("eval", "retrieval", "--json", "--space", "fused"))
    expected_n = sum(held_out(i) for i in range(1, 61))
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
