"""int8 inference on CPU: every projection of both towers, attention included.

``quantize_dynamic`` only reaches ``nn.Linear``; nn.MultiheadAttention keeps its input
projection as a bare parameter, a third of a ViT's matmul work. Each self-attention is
therefore rebuilt from two Linear layers around ``scaled_dot_product_attention`` (same
maths), and then every Linear is quantized.
"""

from __future__ import annotations

import logging
import warnings

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


class LinearSelfAttention(nn.Module):
    """Drop-in for an eval-mode, batch-first nn.MultiheadAttention used as self-attention."""

    def __init__(self, attn: nn.MultiheadAttention) -> None:
        super().__init__()
        width = attn.embed_dim
        self.heads = attn.num_heads
        self.in_proj = nn.Linear(width, 3 * width, bias=attn.in_proj_bias is not None)
        self.out_proj = nn.Linear(width, width, bias=attn.out_proj.bias is not None)
        with torch.no_grad():
            self.in_proj.weight.copy_(attn.in_proj_weight)
            if attn.in_proj_bias is not None:
                self.in_proj.bias.copy_(attn.in_proj_bias)
            self.out_proj.weight.copy_(attn.out_proj.weight)
            if attn.out_proj.bias is not None:
                self.out_proj.bias.copy_(attn.out_proj.bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
        **_: object,
    ) -> tuple[torch.Tensor, None]:
        batch, length, width = query.shape  # [batch, tokens, width]
        qkv = self.in_proj(query).view(batch, length, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [batch, heads, tokens, head_width]
        if attn_mask is not None and attn_mask.dtype != torch.bool:
            attn_mask = attn_mask.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width)), None


def _swap_attention(model: nn.Module) -> int:
    swapped = 0
    for module in model.modules():
        attn = getattr(module, "attn", None)
        # open_clip's residual blocks; cross-attention blocks (ln_1_kv) keep theirs.
        if (
            isinstance(attn, nn.MultiheadAttention)
            and attn.batch_first
            and not hasattr(module, "ln_1_kv")
        ) and attn._qkv_same_embed_dim:
            module.attn = LinearSelfAttention(attn)
            swapped += 1
    return swapped


def quantize_for_cpu(model: nn.Module) -> nn.Module:
    """int8 dynamic quantization; falls back to fp32 where torch has no quantized CPU engine."""
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as exc:
        log.warning("int8 quantization unavailable (%s); running fp32", exc)
        return model
    _swap_attention(model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch announces the API's move to torchao
            quantized: nn.Module = quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    except (RuntimeError, AttributeError) as exc:
        log.warning("int8 quantization failed (%s); running fp32", exc)
        return model
    for module in quantized.modules():
        fc = getattr(getattr(module, "mlp", None), "c_fc", None)
        if fc is not None and not isinstance(fc, nn.Linear):
            # open_clip asks c_fc for the activation dtype; this is its hook for int8 layers.
            fc.int8_original_dtype = torch.float32
    return quantized
