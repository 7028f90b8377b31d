"""A model fitted on one data dir's corpus, used on another: search says so (issue 35)."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from encoder.fitted import FITTED_ON_KEY, fitted_elsewhere, fitted_on
from simmim.paths import DataLayout
from simmim.settings import Settings
from tests.api_fixtures import build_world
from tests.encoder_fixtures import tiny_settings


def _fitted_copy(weights: Path, out: Path, corpus: str) -> Path:
    save_file(load_file(str(weights)), str(out), {FITTED_ON_KEY: corpus})
    return out


def test_the_warning_follows_the_corpus_id(tmp_path: Path, tiny_weights: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    here = layout.corpus_id()
    assert here and layout.corpus_id() == here  # made once, then read
    assert DataLayout(tmp_path / "other").corpus_id(create=False) is None

    def settings(weights: Path) -> Settings:
        return Settings(data_dir=layout.root, encoder=tiny_settings(weights))  # type: ignore[arg-type]

    assert fitted_elsewhere(settings(tiny_weights)) is None  # a model fitted on no corpus
    own = _fitted_copy(tiny_weights, tmp_path / "own.safetensors", here)
    assert fitted_on(str(own)) == here and fitted_elsewhere(settings(own)) is None
    demo = _fitted_copy(tiny_weights, tmp_path / "demo-tiny.safetensors", "the-demo-corpus")
    said = fitted_elsewhere(settings(demo))
    assert said and "demo-tiny.safetensors" in said and "fitted on another data dir" in said
    assert "simmim train-backbone" in said  # and what to do


def test_api_and_cli_search_warn(
    db_url: str,
    tmp_path: Path,
    tiny_weights: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from encoder import load_encoder

    demo = _fitted_copy(tiny_weights, tmp_path / "demo-tiny.safetensors", "the-demo-corpus")
    fitted = load_encoder(Settings(encoder=tiny_settings(demo)))  # type: ignore[arg-type]
    world = build_world(db_url, tmp_path / "data", demo, fitted)
    try:
        with world.client as client:
            body = {"text": "interest rates", "k": 3}
            answer = client.post("/v1/search", json=body, headers=world.read).json()
            [warning] = answer["warnings"]
            assert "fitted on another data dir" in warning and answer["results"]
    finally:
        world.engine.dispose()
    # The CLI on the same data dir and model: the warning on stderr, the rows on stdout.
    from app.cli import main

    for name, value in {
        "SIMMIM_DATA_DIR": str(world.settings.data_dir),
        "SIMMIM_DATABASE__URL": db_url,
        "SIMMIM_ENCODER__MODEL": world.settings.encoder.model,
        "SIMMIM_ENCODER__PRETRAINED": str(demo),
        "SIMMIM_ENCODER__CPU_INT8": "false",
    }.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["search", "interest rates", "-k", "2", "--csv"])
    out, err = capsys.readouterr()
    assert done.value.code in (0, None), err
    assert "fitted on another data dir" in " ".join(err.split()) and out.startswith("rank,score")
