from __future__ import annotations

from pathlib import Path

import numpy as np
import open_clip
import torch

from encoder import Encoder, ItemInput
from encoder.explain import explain_fused, overlay_heatmap, text_image_map, word_weights
from encoder.registry import TINY_MODEL, register_model_configs
from tests.encoder_fixtures import picture


def test_word_weights_merge_bpe_pieces_and_drop_specials() -> None:
    register_model_configs()
    tokenizer = open_clip.get_tokenizer(TINY_MODEL)
    ids = tokenizer(["supercalifragilistic strong earnings"])[0].numpy()
    pieces = int((ids != 0).sum()) - 2  # minus start/end
    assert pieces > 3  # the long word is several BPE pieces
    weights = np.zeros(len(ids), np.float32)
    weights[1 : 1 + pieces] = 1.0
    weights[0] = 5.0  # the start token's weight must not leak into words
    words = word_weights(tokenizer, ids, weights)
    assert [w for w, _ in words] == ["supercalifragilistic", "strong", "earnings"]
    assert words[0][1] > words[1][1]  # more pieces, more weight
    assert abs(sum(w for _, w in words) - 1.0) < 1e-6


def test_explain_fused_gives_a_heatmap_and_word_weights(tiny_encoder: Encoder) -> None:
    explanation = explain_fused(
        tiny_encoder, ItemInput(text="central bank raises rates", image=picture(3))
    )
    assert explanation.heatmap is not None and explanation.heatmap.shape == (4, 4)
    assert explanation.heatmap.min() == 0.0 and explanation.heatmap.max() == 1.0
    assert [w for w, _ in explanation.words] == ["central", "bank", "raises", "rates"]
    text_only = explain_fused(tiny_encoder, ItemInput(text="just words"))
    assert text_only.heatmap is None and len(text_only.words) == 2


def test_text_image_map_is_patch_query_similarity(
    tiny_encoder: Encoder, tiny_weights: Path
) -> None:
    image = picture(11, (128, 128))
    heat = text_image_map(tiny_encoder, image, "a red square")
    assert heat.shape == (4, 4)
    # independent computation with open_clip's own model
    model, _, preprocess = open_clip.create_model_and_transforms(
        TINY_MODEL, pretrained=str(tiny_weights)
    )
    model.eval()
    model.visual.output_tokens = True
    with torch.no_grad():
        _, tokens = model.visual(preprocess(image)[None])
        patches = torch.nn.functional.normalize(tokens @ model.visual.proj, dim=-1)[0]
        query = model.encode_text(
            open_clip.get_tokenizer(TINY_MODEL)(["a red square"]), normalize=True
        )[0]
    expected = (patches @ query).reshape(4, 4).numpy()
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(heat, expected, atol=1e-4)


def test_overlay_marks_hot_patches(tmp_path: Path) -> None:
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0
    image = overlay_heatmap(picture(1, (200, 100)), heat, size=128)
    assert image.size == (128, 128)
    pixels = np.asarray(image).astype(int)
    hot, cold = pixels[5, 5], pixels[120, 120]
    assert hot[0] - hot[2] > cold[0] - cold[2]  # redder where the heat is
    image.save(tmp_path / "overlay.png")
    assert (tmp_path / "overlay.png").stat().st_size > 0
