"""The frozen open_clip towers, returning token-level states beside the pooled embeddings.

Fusion and explanations need what the pooled vector throws away: the image's patch tokens
and the text's per-token states. Both come from open_clip's own forward paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from open_clip.model import CLIP

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
    out = model.forward_intermediates(
        text=token_ids, text_indices=1, normalize_intermediates=True, normalize=True
    )
    states = out["text_intermediates"][-1]  # [batch, context, width]
    return TextTowerOutput(out["text_features"].float(), states, token_ids != 0)


def project_patches(model: CLIP, patch_tokens: torch.Tensor) -> torch.Tensor:
    """Patch tokens through the visual projection into the joint space (for heatmaps)."""
    proj = model.visual.proj
    projected = patch_tokens @ proj if proj is not None else patch_tokens  # [batch, patches, dim]
    return F.normalize(projected.float(), dim=-1)


def patch_grid(model: CLIP) -> tuple[int, int]:
    grid = model.visual.grid_size
    return int(grid[0]), int(grid[1])
