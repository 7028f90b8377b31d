"""No model weights reachable: the loader says so at once, the index step reports
"encoder unavailable" with the fix, and scoring still writes sentiment, tickers and
keyword topics (vector topics come with a later rescore)."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import constants as hub_constants
from sqlalchemy import Engine, select

from encoder.errors import EncoderError
from monitor.cycle import Runtime
from monitor.models import Score
from simmim.db import session_factory, session_scope
from simmim.models import Item, ItemStatus, Source, SourceKind
from simmim.settings import Settings


@pytest.fixture
def offline_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The default pretrained model, an empty cache, and no way to download."""
    import open_clip

    def must_not_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("the loader went on to download instead of failing fast")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", must_not_download)
    return Settings(
        data_dir=tmp_path / "data",
        encoder={"cache_dir": str(tmp_path / "empty-cache")},  # type: ignore[arg-type]
    )


def test_unreachable_hub_fails_fast_with_the_fix(
    offline_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from encoder import load_encoder

    def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("encoder.loading.socket.create_connection", unreachable)
    with pytest.raises(EncoderError, match="cannot be reached") as info:
        load_encoder(offline_settings)
    assert "SIMMIM_ENCODER__PRETRAINED" in str(info.value)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 sets it
    with pytest.raises(EncoderError, match="HF_HUB_OFFLINE"):
        load_encoder(offline_settings)


def test_scoring_goes_on_without_the_model(
    offline_settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 sets it
    with session_scope(session_factory(engine)) as session:
        source = Source(name="wire", kind=SourceKind.RSS, location="https://wire.example/rss")
        session.add(source)
        session.flush()
        for title in (
            "$ACME shares plunge after the profit warning and layoffs",
            "Bolt Motors beats estimates and raises its guidance",
        ):
            session.add(Item(source_id=source.id, title=title, status=ItemStatus.PENDING))
    runtime = Runtime(offline_settings, engine)
    index, score = runtime.run_once(("index", "score"))
    assert not index.ok and index.error and "encoder unavailable" in index.error
    assert "SIMMIM_ENCODER__PRETRAINED" in index.error, "the error names the fix"
    assert score.ok, score.error
    assert score.summary["scored"] == 2 and "keywords only" in score.summary["topics_by"]
    with session_scope(session_factory(engine)) as session:
        scores = {s.item_id: s for s in session.scalars(select(Score))}
        assert len(scores) == 2
        acme = next(s for s in scores.values() if "ACME" in s.tickers)
        assert acme.label == "negative"
        assert all(":text-only:" in s.topic_scorer for s in scores.values())  # no CLIP
