"""Encoder: open_clip towers, batched encoding, Semantic Memory fusion.

One way in: :func:`load_encoder` returns a ready :class:`Encoder` with ``encode_images``,
``encode_texts`` and ``encode_items``. The classes are exported lazily (PEP 562), so a
command that only needs the fingerprint does not pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from encoder.encoder import EncodedBatch, Encoder, ItemInput
    from simmim.settings import Settings

__all__ = ["EncodedBatch", "Encoder", "ItemInput", "load_encoder"]
_LAZY = {"EncodedBatch", "Encoder", "ItemInput"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from encoder import encoder as module

        return getattr(module, name)
    raise AttributeError(f"module 'encoder' has no attribute {name!r}")


def load_encoder(settings: Settings, *, trainable: bool = False) -> Encoder:
    """Backbone and fusion as the settings name them, on the best available device.

    ``trainable`` keeps the towers in full precision for fine-tuning.
    """
    from encoder.encoder import Encoder
    from encoder.fingerprint import model_fingerprint
    from encoder.loading import load_backbone, load_fusion_for

    config = settings.encoder
    backbone = load_backbone(config, trainable=trainable)
    fusion = load_fusion_for(backbone, config.fusion_checkpoint)
    return Encoder(
        backbone,
        fusion,
        fingerprint=model_fingerprint(config),
        batch_size=config.batch_size,
        workers=config.workers,
        max_image_pixels=settings.max_image_pixels,
        image_formats=settings.image_formats,
        thumbnail_size=settings.thumbnail_size,
        gpu_decode=config.gpu_decode,
    )
