"""Fusion training beats the CLIP mean on held-out items; backbone fine-tuning improves recall."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from encoder import load_encoder
from encoder.fusion import read_fusion_header
from encoder.train.finetune import BackboneTrainConfig, train_backbone
from encoder.train.pairs import Pair, read_pairs_file
from encoder.train.training import FusionTrainConfig, recall_at_k, text_spans, train_fusion
from simmim.settings import Settings
from tests.encoder_fixtures import picture, tiny_settings

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu bank rates "
    "oil gold chip auto retail pharma"
).split()


def boilerplate_corpus(folder: Path, n: int, seed: int = 0) -> list[Pair]:
    """Items whose texts share a site name and 'Read more' boilerplate around a short content.

    Queries are spans of the content, so the CLIP mean (dominated by the shared
    boilerplate) is weak and textual attention has something to learn.
    """
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        path = folder / f"{i}.png"
        picture(i).save(path)
        content = " ".join(rng.choice(WORDS) for _ in range(6))
        pairs.append(
            Pair(
                path,
                f"Example News | {content} | Read more at example news. Subscribe for daily market updates.",
            )
        )
    return pairs


def test_recall_at_k_counts_ranks() -> None:
    gallery = torch.eye(4)
    queries = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    assert recall_at_k(queries, gallery, ks=(1, 4)) == {1: 0.75, 4: 1.0}


def test_text_spans_are_contiguous_pieces() -> None:
    text = "one two three four five six seven eight nine ten"
    for span in text_spans(text, 5, random.Random(0)):
        assert span in text and 2 <= len(span.split()) <= 8


def test_trained_fusion_beats_the_clip_mean_on_held_out_items(
    tiny_weights: Path, tmp_path: Path
) -> None:
    encoder = load_encoder(Settings(encoder=tiny_settings(tiny_weights, batch_size=64)))  # type: ignore[arg-type]
    pairs = boilerplate_corpus(tmp_path, 200)
    out = tmp_path / "fusion.safetensors"
    report = train_fusion(encoder, pairs, out, FusionTrainConfig(epochs=25, patience=6))

    assert report.n_val == 40 and report.n_train == 160
    for direction in ("text_to_item", "image_to_item"):
        base, trained = report.baseline[direction], report.trained[direction]
        assert trained[5] >= base[5] + 0.10, (direction, base, trained)
        assert trained[10] >= base[10], (direction, base, trained)

    header = read_fusion_header(out)
    assert header["backbone"] == encoder.backbone.fingerprint
    assert (
        json.loads(header["report"])["trained"]["text_to_item"]["5"]
        == report.trained["text_to_item"][5]
    )

    # The checkpoint is used through settings, and changes the fused space (not the towers).
    trained_encoder = load_encoder(
        Settings(encoder=tiny_settings(tiny_weights, fusion_checkpoint=str(out)))  # type: ignore[arg-type]
    )
    assert trained_encoder.fingerprint.split("+")[1].startswith("fusion:sha256:")
    from encoder import ItemInput

    item = [ItemInput(text=pairs[0].text, image=pairs[0].image)]
    before = next(encoder.encode_items(item))
    after = next(trained_encoder.encode_items(item))
    np.testing.assert_allclose(after.image, before.image, atol=1e-6)
    assert not np.allclose(after.fused, before.fused, atol=1e-3)


def test_backbone_fine_tuning_improves_held_out_recall(tiny_weights: Path, tmp_path: Path) -> None:
    colours = {
        "red": (220, 20, 20),
        "green": (20, 200, 20),
        "blue": (20, 20, 220),
        "yellow": (230, 230, 20),
    }
    rng = random.Random(0)
    pairs = []
    for i in range(120):
        name = rng.choice(list(colours))
        image = Image.new("RGB", (64, 64), colours[name])
        ImageDraw.Draw(image).rectangle(
            (rng.randrange(30), rng.randrange(30), 40, 40), fill=(128, 128, 128)
        )
        image.save(tmp_path / f"{i}.png")
        pairs.append(Pair(tmp_path / f"{i}.png", f"a {name} picture"))
    encoder = load_encoder(Settings(encoder=tiny_settings(tiny_weights)), trainable=True)  # type: ignore[arg-type]
    out = tmp_path / "backbone.safetensors"
    report = train_backbone(
        encoder, pairs, out, BackboneTrainConfig(epochs=6, lr=1e-3), fitted_on="corpus-a"
    )
    before, after = report.baseline["text_to_image"], report.trained["text_to_image"]
    assert after[10] > before[10] + 0.2, (before, after)
    from encoder.fitted import fitted_on

    assert fitted_on(str(out)) == "corpus-a"  # search elsewhere can tell (issue 35)

    # The checkpoint is an ordinary open_clip weights file: load it the way users do.
    reloaded = load_encoder(Settings(encoder=tiny_settings(out)))  # type: ignore[arg-type]
    encoder.backbone.model.eval()
    probe = [picture(5)]
    np.testing.assert_allclose(
        reloaded.encode_images(probe)[0], encoder.encode_images(probe)[0], atol=1e-5
    )


def test_pairs_file_formats_and_errors(tmp_path: Path) -> None:
    from encoder.errors import EncoderError

    picture(0).save(tmp_path / "a.png")
    (tmp_path / "pairs.csv").write_text(
        "image,text\na.png,hello there\n,no image\n", encoding="utf-8"
    )
    assert read_pairs_file(tmp_path / "pairs.csv") == [Pair(tmp_path / "a.png", "hello there")]
    (tmp_path / "pairs.jsonl").write_text('{"img": "a.png", "caption": "x"}\n', encoding="utf-8")
    assert (
        read_pairs_file(tmp_path / "pairs.jsonl", image_col="img", text_col="caption")[0].text
        == "x"
    )
    with pytest.raises(EncoderError, match=r"record 1: needs fields 'image' and 'text'"):
        read_pairs_file(tmp_path / "pairs.jsonl")
    (tmp_path / "bad.jsonl").write_text("{oops\n", encoding="utf-8")
    with pytest.raises(EncoderError, match="line 1: not JSON"):
        read_pairs_file(tmp_path / "bad.jsonl")


def test_train_fusion_command(
    tiny_weights: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.cli import main

    pairs = boilerplate_corpus(tmp_path, 40)
    with (tmp_path / "pairs.jsonl").open("w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps({"image": pair.image.name, "text": pair.text}) + "\n")
    monkeypatch.setenv("SIMMIM_ENCODER__MODEL", "simmim-tiny")
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", str(tiny_weights))
    out = tmp_path / "f.safetensors"
    with pytest.raises(SystemExit) as info:
        main(
            [
                "train-fusion",
                "--data",
                str(tmp_path / "pairs.jsonl"),
                "--epochs",
                "2",
                "--out",
                str(out),
                "--json",
            ]
        )
    assert info.value.code in (0, None)
    shown = json.loads(capsys.readouterr().out)
    assert shown["checkpoint"] == str(out) and out.is_file()
    assert set(shown["trained"]) == {"text_to_item", "image_to_item"}


def test_train_commands_explain_their_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    for command in ("train-fusion", "train-backbone"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "--data" in text and "CSV" in text and "JSONL" in text


def test_items_sharing_a_picture_are_not_each_others_negatives() -> None:
    from encoder.train.training import _info_nce, key_codes, same_code

    pairs = [Pair(Path("stock.jpg"), "a"), Pair(Path("own.jpg"), "b"), Pair(Path("stock.jpg"), "c")]
    codes = key_codes(str(pair.image) for pair in pairs)
    assert codes.tolist() == [0, 1, 0]
    # Two items carry the same photo, so an image query cannot tell them apart: unmasked,
    # the loss can never fall below log 2 for them; masked, it is exactly 0 here.
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    scale = torch.tensor(100.0)
    unmasked = _info_nce(vectors, vectors, scale)
    same = same_code(codes)
    assert float(unmasked) == pytest.approx(2 / 3 * math.log(2), abs=1e-4)
    assert float(_info_nce(vectors, vectors, scale, same)) == pytest.approx(0.0, abs=1e-4)
