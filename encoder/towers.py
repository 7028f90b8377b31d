"""The frozen open_clip towers, returning token-level states beside the pooled embeddings.

Fusion and explanations need what the pooled vector throws away: the image's patch tokens
and the text's per-token states. Both come from open_clip's own forward paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from open_clip.model import CLIP, text_global_pool
from torch import nn

from encoder.errors import EncoderError


@dataclass
class ImageTowerOutput:
    embeds: torch.Tensor  # [batch, dim], L2-normalised e_v
    patch_tokens: torch.Tensor  # [batch, patches, vision_width], after ln_post


@dataclass
class TextTowerOutput:
    embeds: torch.Tensor  # [batch, dim], L2-normalised e_t
    token_states: torch.Tensor  # [batch, context, text_width], after ln_final
    token_mask: torch.Tensor  # [batch, context] bool, True on real tokens (incl. start/end)


def enable_token_outputs(model: CLIP) -> None:
    """Make the vision tower return (pooled, patch tokens); only ViT towers can."""
    if not isinstance(model, CLIP) or not hasattr(model.visual, "output_tokens"):
        raise EncoderError(
            f"{type(model.visual).__name__} towers do not expose patch tokens",
            hint="choose a ViT-based open_clip model (e.g. ViT-B-32, ViT-L-14)",
        )
    model.visual.output_tokens = True


def image_tower(model: CLIP, pixels: torch.Tensor) -> ImageTowerOutput:
    pooled, tokens = model.visual(pixels)  # [batch, dim], [batch, patches, width]
    return ImageTowerOutput(F.normalize(pooled.float(), dim=-1), tokens)


def text_tower(model: CLIP, token_ids: torch.Tensor) -> TextTowerOutput:
    """open_clip's text forward, run only as far as the batch's longest text.

    Every text is padded to the context (77 tokens); a causal tower never lets a position
    see later ones and pools at the end-of-text token, so the positions after the longest
    text change nothing before them: cut off, they cost nothing (a tweet is ~30 tokens).
    The token states come back at full context length, zeros past the cut (masked)."""
    context = token_ids.shape[1]
    length = _needed_length(model, token_ids)
    ids = token_ids[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(ids).to(cast) + model.positional_embedding[:length].to(cast)
    mask = model.attn_mask[:length, :length] if model.attn_mask is not None else None
    x = model.ln_final(model.transformer(x, attn_mask=mask))  # [batch, length, width]
    pooled = text_global_pool(
        x, ids, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None)
    )
    projection = model.text_projection
    if projection is not None:
        pooled = projection(pooled) if isinstance(projection, nn.Linear) else pooled @ projection
    states = x if length == context else F.pad(x, (0, 0, 0, context - length))
    return TextTowerOutput(F.normalize(pooled.float(), dim=-1), states, token_ids != 0)


def _needed_length(model: CLIP, token_ids: torch.Tensor) -> int:
    """The longest text's tokens, where cutting is exact (a causal mask and end-of-text
    pooling); else the whole context."""
    context = token_ids.shape[1]
    if model.attn_mask is None or model.text_pool_type not in ("argmax", "eos", "first"):
        return context
    real = (token_ids != 0).any(dim=0).nonzero()
    return int(real.max()) + 1 if len(real) else 1


def project_patches(model: CLIP, patch_tokens: torch.Tensor) -> torch.Tensor:
    """Patch tokens through the visual projection into the joint space (for heatmaps)."""
    proj = model.visual.proj
    projected = patch_tokens @ proj if proj is not None else patch_tokens  # [batch, patches, dim]
    return F.normalize(projected.float(), dim=-1)


def patch_grid(model: CLIP) -> tuple[int, int]:
    grid = model.visual.grid_size
    return int(grid[0]), int(grid[1])
