"""Why a result matched: heatmaps over the image and weights over the words.

Two kinds of map:
- fused matches: the fusion's own attention, a_v per patch and a_t per token;
- plain text->image matches: training-free, each patch token projected into the joint space
  and compared with the query's text embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from encoder.device import inference
from encoder.encoder import Encoder, ItemInput
from encoder.towers import image_tower, patch_grid, project_patches, text_tower
from simmim.images import ImageInput, open_image


@dataclass
class Explanation:
    heatmap: np.ndarray | None  # [grid_h, grid_w], in [0, 1]; None without an image
    words: list[tuple[str, float]]  # (word, weight) in text order; weights sum to 1


def word_weights(
    tokenizer: object, token_ids: np.ndarray, weights: np.ndarray
) -> list[tuple[str, float]]:
    """Merge BPE pieces back into words, summing their weights; special tokens dropped."""
    decoder: dict[int, str] = getattr(tokenizer, "decoder", {})
    special = set(getattr(tokenizer, "all_special_ids", []))
    words: list[tuple[str, float]] = []
    piece, weight = "", 0.0
    for token, w in zip(token_ids.tolist(), weights.tolist(), strict=True):
        if token == 0 or token in special:
            continue
        text = decoder.get(token, "")
        piece, weight = piece + text.replace("</w>", ""), weight + w
        if text.endswith("</w>"):
            words.append((piece, weight))
            piece, weight = "", 0.0
    if piece:
        words.append((piece, weight))
    total = sum(w for _, w in words) or 1.0
    return [(word, w / total) for word, w in words]


def _grid(values: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    heat = values.reshape(grid).astype(np.float32)
    low, high = float(heat.min()), float(heat.max())
    return (heat - low) / (high - low) if high > low else np.zeros_like(heat)


def explain_fused(encoder: Encoder, item: ItemInput) -> Explanation:
    """The fusion's attention for one item: where in the image, which words."""
    batch = next(encoder.encode_items([item], keep_attention=True))
    assert (
        batch.visual_weights is not None
        and batch.text_weights is not None
        and batch.token_ids is not None
    )
    heat = None
    if batch.has_image[0]:
        heat = _grid(batch.visual_weights[0], patch_grid(encoder.backbone.model))
    words = (
        word_weights(encoder.backbone.tokenizer, batch.token_ids[0], batch.text_weights[0])
        if batch.has_text[0]
        else []
    )
    return Explanation(heat, words)


def text_image_map(encoder: Encoder, image: ImageInput, query: str) -> np.ndarray:
    """Training-free heatmap: cosine between each projected patch and the query text."""
    model = encoder.backbone.model
    pixels = encoder.load_pixels(image)[None]  # [1, 3, H, W]
    with inference(encoder.device):
        patches = project_patches(model, image_tower(model, pixels.to(encoder.device)).patch_tokens)
        query_vec = text_tower(model, encoder.backbone.tokenizer([query]).to(encoder.device)).embeds  # type: ignore[misc]
        similarity = torch.einsum("bpd,bd->bp", patches, query_vec)[0]  # [patches]
    return _grid(similarity.float().cpu().numpy(), patch_grid(model))


def overlay_heatmap(
    image: ImageInput,
    heat: np.ndarray,
    *,
    size: int = 384,
    alpha: float = 0.55,
    max_pixels: int = 50_000_000,
) -> Image.Image:
    """The picture as the model saw it (centre square) with the heatmap laid over it."""
    picture = open_image(image, max_pixels=max_pixels)
    side = min(picture.size)
    left, top = (picture.width - side) // 2, (picture.height - side) // 2
    square = picture.crop((left, top, left + side, top + side)).resize(
        (size, size), Image.Resampling.BICUBIC
    )
    levels = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize(
        (size, size), Image.Resampling.BILINEAR
    )
    h = np.asarray(levels, dtype=np.float32) / 255.0  # [size, size]
    # dark blue -> red -> yellow: readable on most photos
    color = np.stack(
        [np.clip(2 * h, 0, 1), np.clip(2 * h - 1, 0, 1), np.clip(1 - 2 * h, 0, 1) * 0.6], -1
    )
    base = np.asarray(square, dtype=np.float32) / 255.0
    blended = (1 - alpha) * base + alpha * color
    return Image.fromarray((blended * 255).round().astype(np.uint8))
