"""Semantic Memory fusion: identity at init, masking, shapes, gradients, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from encoder.errors import EncoderError
from encoder.fusion import FusionConfig, SemanticMemoryFusion, load_fusion, save_fusion

CONFIG = FusionConfig(embed_dim=16, vision_width=24, text_width=20, width=32, heads=4, slots=4)
BATCH, PATCHES, CONTEXT = 5, 9, 7


def inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    token_mask = torch.zeros(BATCH, CONTEXT, dtype=torch.bool)
    for row, length in enumerate([7, 3, 5, 0, 2]):  # row 3 has no text
        token_mask[row, :length] = True
    has_image = torch.tensor([True, True, False, True, True])  # row 2 has no image
    return {
        "image_embeds": F.normalize(torch.randn(BATCH, 16, generator=g), dim=-1)
        * has_image[:, None],
        "patch_tokens": torch.randn(BATCH, PATCHES, 24, generator=g),
        "has_image": has_image,
        "text_embeds": F.normalize(torch.randn(BATCH, 16, generator=g), dim=-1)
        * token_mask.any(1)[:, None],
        "token_states": torch.randn(BATCH, CONTEXT, 20, generator=g),
        "token_mask": token_mask,
    }


def test_untrained_fusion_is_the_normalised_clip_mean() -> None:
    torch.manual_seed(0)
    fusion = SemanticMemoryFusion(CONFIG).eval()
    x = inputs()
    out = fusion(**x)
    expected = F.normalize(x["image_embeds"] + x["text_embeds"], dim=-1)
    torch.testing.assert_close(out.fused, expected)
    # single-modality rows equal their one embedding
    torch.testing.assert_close(out.fused[2], x["text_embeds"][2])  # text only
    torch.testing.assert_close(out.fused[3], x["image_embeds"][3])  # image only


def test_shapes_and_attention_masks() -> None:
    torch.manual_seed(0)
    fusion = SemanticMemoryFusion(CONFIG).eval()
    x = inputs()
    out = fusion(**x)
    assert out.fused.shape == (BATCH, 16)
    assert out.visual_weights.shape == (BATCH, PATCHES)
    assert out.text_weights.shape == (BATCH, CONTEXT)
    # weights are distributions over what exists, zero elsewhere
    torch.testing.assert_close(out.visual_weights.sum(1), x["has_image"].float())
    torch.testing.assert_close(out.text_weights.sum(1), x["token_mask"].any(1).float())
    assert torch.all(out.text_weights[~x["token_mask"]] == 0)
    assert torch.isfinite(out.fused).all()


def test_padding_content_does_not_change_the_output() -> None:
    torch.manual_seed(0)
    fusion = SemanticMemoryFusion(CONFIG).eval()
    with torch.no_grad():
        fusion.gate.fill_(1.0)  # make the learned path count
    x = inputs()
    before = fusion(**x)
    noisy = dict(x)
    noisy["token_states"] = x["token_states"].clone()
    noisy["token_states"][~x["token_mask"]] = 1e3  # garbage in padded positions
    noisy["patch_tokens"] = x["patch_tokens"].clone()
    noisy["patch_tokens"][~x["has_image"]] = -1e3  # garbage in the missing image
    after = fusion(**noisy)
    torch.testing.assert_close(after.fused, before.fused)
    torch.testing.assert_close(after.text_weights, before.text_weights)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    fusion = SemanticMemoryFusion(CONFIG).train()
    x = inputs()
    # At init only the gate gets a gradient (tanh(0) = 0 blocks the rest) ...
    fusion(**x).fused.sum().backward()
    assert fusion.gate.grad is not None and fusion.gate.grad.abs() > 0
    assert fusion.out_proj.weight.grad is not None
    assert torch.count_nonzero(fusion.out_proj.weight.grad) == 0
    # ... and once the gate has moved, every parameter learns.
    fusion.zero_grad()
    with torch.no_grad():
        fusion.gate.fill_(0.5)
    out = fusion(**x)
    (out.fused * torch.randn_like(out.fused)).sum().backward()
    silent = [
        name
        for name, p in fusion.named_parameters()
        if p.grad is None or torch.count_nonzero(p.grad) == 0
    ]
    assert silent == []


def test_checkpoint_roundtrip_and_backbone_check(tmp_path: Path) -> None:
    torch.manual_seed(0)
    fusion = SemanticMemoryFusion(CONFIG).eval()
    with torch.no_grad():
        fusion.gate.fill_(0.7)
    path = tmp_path / "fusion.safetensors"
    save_fusion(fusion, path, backbone="simmim-tiny/sha256:abc")
    loaded = load_fusion(path, backbone="simmim-tiny/sha256:abc")
    x = inputs()
    torch.testing.assert_close(loaded(**x).fused, fusion(**x).fused)
    with pytest.raises(EncoderError, match="trained on backbone simmim-tiny/sha256:abc"):
        load_fusion(path, backbone="ViT-B-32/laion2b_s34b_b79k")
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(EncoderError, match="not a safetensors file"):
        load_fusion(tmp_path / "junk.safetensors", backbone="x")
