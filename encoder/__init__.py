"""Encoder: open_clip towers, batched encoding, Semantic Memory fusion.

One way in: :func:`load_encoder` returns a ready :class:`Encoder` with ``encode_images``,
``encode_texts`` and ``encode_items``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from encoder.encoder import Encoder
    from simmim.settings import Settings

__all__ = ["load_encoder"]


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
    )
