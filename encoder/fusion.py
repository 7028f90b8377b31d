"""Semantic Memory fusion: one embedding per image+text item, with attention that explains it.

The seven steps of the architecture page, in order:

1. project image patch tokens V and text token states T to width d;
2. visual attention: text-guided attention pooling over patches (weights ``a_v``);
3. textual attention: image-guided attention pooling over tokens (weights ``a_t``);
4. memory slots written by cross-attention over [V; T; pooled visual; pooled text];
5. self-attention among the slots;
6. image tokens attend text tokens and vice versa, and the memory reads the result;
7. ``f = normalize(normalize(e_v + e_t) + tanh(g) · W_o · pool(memory))`` with g = 0 at init.

With g = 0 an untrained module returns the normalised CLIP mean exactly, so training starts
from that baseline. A missing modality is masked everywhere and its embedding is zero, so
an image-only item's f is its e_v (text-only: e_t) until training moves g.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from encoder.errors import EncoderError
from simmim.files import atomic_write


@dataclass(frozen=True)
class FusionConfig:
    embed_dim: int  # D: the joint space of the backbone
    vision_width: int  # d_v of patch tokens
    text_width: int  # d_t of token states
    width: int = 256  # d: the fusion's own width
    heads: int = 4
    slots: int = 8
    slot_layers: int = 1
    dropout: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FusionConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise EncoderError(f"unknown fusion config keys {sorted(unknown)}")
        return cls(**data)


@dataclass
class FusionOutput:
    fused: torch.Tensor  # [batch, D], L2-normalised
    visual_weights: torch.Tensor  # [batch, patches] a_v; zeros where the item has no image
    text_weights: torch.Tensor  # [batch, context] a_t; zeros on padding and text-less items


def masked_attention(
    attn: nn.MultiheadAttention,
    query: torch.Tensor,
    keys: torch.Tensor,
    valid: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention where some rows may have no valid key at all.

    Such rows would softmax over nothing (NaN); they attend a dummy key instead and their
    output and weights are zeroed.
    """
    empty = ~valid.any(dim=1)  # [batch]
    safe_valid = valid.clone()
    safe_valid[empty, 0] = True
    out, weights = attn(
        query,
        keys,
        keys,
        key_padding_mask=~safe_valid,
        need_weights=True,
        average_attn_weights=True,
    )  # [batch, q, d], [batch, q, keys]
    keep = (~empty).to(out.dtype)[:, None, None]
    return out * keep, weights * keep


class _Block(nn.Module):
    """Pre-norm transformer block over the memory slots."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class _CrossAttend(nn.Module):
    """``x + attn(norm(x), norm(context))`` with key masking; returns weights too."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln_q = nn.LayerNorm(width)
        self.ln_kv = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, weights = masked_attention(self.attn, self.ln_q(x), self.ln_kv(context), valid)
        return x + out, weights


class SemanticMemoryFusion(nn.Module):
    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        d = config.width
        # 1. projections
        self.proj_v = nn.Sequential(nn.Linear(config.vision_width, d), nn.LayerNorm(d))
        self.proj_t = nn.Sequential(nn.Linear(config.text_width, d), nn.LayerNorm(d))
        self.query_from_text = nn.Linear(config.embed_dim, d)
        self.query_from_image = nn.Linear(config.embed_dim, d)
        # Used as the guiding query when the other modality is missing.
        self.visual_query = nn.Parameter(torch.randn(d) * 0.02)
        self.text_query = nn.Parameter(torch.randn(d) * 0.02)
        # 2-3. guided attention pooling
        self.visual_attention = _CrossAttend(d, config.heads, config.dropout)
        self.textual_attention = _CrossAttend(d, config.heads, config.dropout)
        # 4-5. memory
        self.memory = nn.Parameter(torch.randn(config.slots, d) * 0.02)
        self.write = _CrossAttend(d, config.heads, config.dropout)
        self.slot_blocks = nn.ModuleList(
            _Block(d, config.heads, config.dropout) for _ in range(config.slot_layers)
        )
        # 6. cross-modal interaction, then the memory reads it
        self.image_reads_text = _CrossAttend(d, config.heads, config.dropout)
        self.text_reads_image = _CrossAttend(d, config.heads, config.dropout)
        self.read = _CrossAttend(d, config.heads, config.dropout)
        # 7. output
        self.ln_out = nn.LayerNorm(d)
        self.out_proj = nn.Linear(d, config.embed_dim)
        self.gate = nn.Parameter(torch.zeros(()))  # g: tanh(0) = 0, the CLIP-mean baseline

    @property
    def is_identity(self) -> bool:
        """True while g = 0: the output is exactly the normalised CLIP mean."""
        return bool(self.gate.detach() == 0)

    def forward(
        self,
        image_embeds: torch.Tensor,  # [batch, D] e_v (zeros where no image)
        patch_tokens: torch.Tensor,  # [batch, patches, d_v]
        has_image: torch.Tensor,  # [batch] bool
        text_embeds: torch.Tensor,  # [batch, D] e_t (zeros where no text)
        token_states: torch.Tensor,  # [batch, context, d_t]
        token_mask: torch.Tensor,  # [batch, context] bool, real tokens
    ) -> FusionOutput:
        batch, patches = patch_tokens.shape[:2]
        has_text = token_mask.any(dim=1)
        patch_valid = has_image[:, None].expand(batch, patches)  # [batch, patches]
        token_valid = token_mask & has_text[:, None]  # [batch, context]
        image_embeds = image_embeds * has_image[:, None]
        text_embeds = text_embeds * has_text[:, None]

        v = self.proj_v(patch_tokens.float())  # [batch, patches, d]
        t = self.proj_t(token_states.float())  # [batch, context, d]

        # 2. visual attention, guided by the text (or a learned query when there is none)
        q_v = torch.where(has_text[:, None], self.query_from_text(text_embeds), self.visual_query)[
            :, None
        ]  # [batch, 1, d]
        pooled_v, a_v = self.visual_attention(q_v, v, patch_valid)
        # 3. textual attention, guided by the image
        q_t = torch.where(has_image[:, None], self.query_from_image(image_embeds), self.text_query)[
            :, None
        ]  # [batch, 1, d]
        pooled_t, a_t = self.textual_attention(q_t, t, token_valid)

        # 4. memory slots written from everything the item has
        context = torch.cat([v, t, pooled_v, pooled_t], dim=1)  # [batch, P + L + 2, d]
        context_valid = torch.cat(
            [patch_valid, token_valid, has_image[:, None], has_text[:, None]], dim=1
        )
        memory = self.memory.expand(batch, -1, -1)  # [batch, slots, d]
        memory, _ = self.write(memory, context, context_valid)
        # 5. slots talk to each other
        for block in self.slot_blocks:
            memory = block(memory)
        # 6. each modality reads the other; the memory reads the result
        v_x, _ = self.image_reads_text(v, t, token_valid)
        t_x, _ = self.text_reads_image(t, v, patch_valid)
        memory, _ = self.read(
            memory, torch.cat([v_x, t_x], dim=1), torch.cat([patch_valid, token_valid], dim=1)
        )

        # 7. gated residual on the normalised CLIP mean
        base = F.normalize(image_embeds + text_embeds, dim=-1)  # [batch, D]
        delta = self.out_proj(self.ln_out(memory.mean(dim=1)))  # [batch, D]
        fused = F.normalize(base + torch.tanh(self.gate) * delta, dim=-1)
        return FusionOutput(fused, a_v[:, 0], a_t[:, 0])


# ---- checkpoints: safetensors weights with the config and backbone fingerprint in its header


def save_fusion(
    module: SemanticMemoryFusion, path: Path, *, backbone: str, extra: dict[str, Any] | None = None
) -> None:
    metadata = {
        "simmim_kind": "fusion",
        "config": json.dumps(asdict(module.config)),
        "backbone": backbone,
        **{key: json.dumps(value) for key, value in (extra or {}).items()},
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata))


def read_fusion_header(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    if not path.is_file():
        raise EncoderError(
            f"fusion checkpoint {path} does not exist",
            hint="train one with `simmim train-fusion` or unset SIMMIM_ENCODER__FUSION_CHECKPOINT",
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise EncoderError(f"{path} is not a safetensors file: {exc}") from exc
    if metadata.get("simmim_kind") != "fusion":
        raise EncoderError(f"{path} is not a SimMIM fusion checkpoint (no fusion header)")
    return metadata


def load_fusion(path: Path, *, backbone: str) -> SemanticMemoryFusion:
    """Load a checkpoint, refusing one trained on another backbone (its vectors would not fit)."""
    metadata = read_fusion_header(path)
    if metadata["backbone"] != backbone:
        raise EncoderError(
            f"fusion checkpoint {path} was trained on backbone {metadata['backbone']}, "
            f"but the encoder is {backbone}",
            hint="retrain it with `simmim train-fusion`, or set the matching model and weights",
        )
    module = SemanticMemoryFusion(FusionConfig.from_dict(json.loads(metadata["config"])))
    module.load_state_dict(load_file(str(path)))
    return module.eval()
