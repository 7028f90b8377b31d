"""The image half of the input pipeline, as a stage of its own.

A picture goes: bytes read → decoded at the smallest JPEG DCT scale that still covers the
model's input → resized and cropped on uint8 (the same PIL bicubic call torchvision's
``Resize`` makes, so the pixels equal open_clip's own preprocessing) → collated as uint8
(a quarter of float32 to move; pinned when the model is on CUDA) → copied without
blocking → normalised on the device. Decoding and resizing run in threads: Pillow drops
the GIL in both (``bench/encode.py`` prints how they scale). Models whose preprocessing
this does not replay (another interpolation, "longest" resizing) keep open_clip's
transform, in float, in the same threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from simmim.images import ImageDecodeError, ImageInput
from simmim.thumbnails import short_side_to, thumbnail_of


@dataclass(frozen=True)
class PixelSpec:
    """What the model's preprocessing does, read from open_clip's ``preprocess_cfg``."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    squash: bool = False  # resize to size x size instead of short side + centre crop

    @classmethod
    def of(cls, model: Any) -> PixelSpec | None:
        """None when the preprocessing is one this stage does not replay exactly."""
        cfg = dict(getattr(model.visual, "preprocess_cfg", None) or {})
        size = cfg.get("size", getattr(model.visual, "image_size", None))
        if isinstance(size, tuple | list):
            if len(size) != 2 or size[0] != size[1]:
                return None
            size = size[0]
        mode = cfg.get("resize_mode", "shortest")
        if (
            not isinstance(size, int)
            or cfg.get("interpolation", "bicubic") != "bicubic"
            or cfg.get("mode", "RGB") != "RGB"
            or mode not in ("shortest", "squash")
            or "mean" not in cfg
            or "std" not in cfg
        ):
            return None
        mean, std = tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"])
        if len(mean) != 3 or len(std) != 3:
            return None
        return cls(size, mean, std, squash=mode == "squash")  # type: ignore[arg-type]


def fit_uint8(picture: Image.Image, spec: PixelSpec) -> torch.Tensor:
    """RGB picture → [3, S, S] uint8: torchvision's ``Resize(S)`` + ``CenterCrop(S)`` on
    a PIL image, without the float conversion (that happens on the device)."""
    size = spec.size
    if spec.squash:
        resized = picture.resize((size, size), Image.Resampling.BICUBIC)
    else:
        new = short_side_to(*picture.size, size)
        resized = picture if new == picture.size else thumbnail_of(picture, size)
        left = round((resized.width - size) / 2.0)
        top = round((resized.height - size) / 2.0)
        if (left, top) != (0, 0) or resized.size != (size, size):
            resized = resized.crop((left, top, left + size, top + size))
    array = np.asarray(resized, dtype=np.uint8)  # [S, S, 3]
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def fit_tensor(image: torch.Tensor, spec: PixelSpec) -> torch.Tensor:
    """[3, H, W] uint8 on any device → [3, S, S] float in 0..255: the same geometry as
    :func:`fit_uint8`, resampled by torch (antialiased bicubic), for pictures decoded on the
    GPU. Within JPEG noise of the PIL path (tests compare embeddings)."""
    _, height, width = image.shape
    size = spec.size
    new_w, new_h = (size, size) if spec.squash else short_side_to(width, height, size)
    new = (new_h, new_w)
    x = image[None].float()
    if new != (height, width):
        x = F.interpolate(x, size=new, mode="bicubic", align_corners=False, antialias=True)
    x = x.clamp_(0, 255)[0]
    top = round((x.shape[1] - size) / 2.0)
    left = round((x.shape[2] - size) / 2.0)
    return x[:, top : top + size, left : left + size]


class Normaliser:
    """uint8 (or 0..255 float) batches → the model's float input, on the device."""

    def __init__(self, spec: PixelSpec, device: torch.device) -> None:
        self.device = device
        std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
        mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
        self.scale = 1.0 / (255.0 * std)  # x/255 - mean) / std = x * scale + shift
        self.shift = -mean / std

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(self.device, non_blocking=True).float()
        return x.mul_(self.scale).add_(self.shift)


def collate(tensors: list[torch.Tensor], *, pin: bool) -> torch.Tensor:
    """Stack into one buffer, page-locked when it goes to a GPU (so the copy is async)."""
    if not pin:
        return torch.stack(tensors)
    out = torch.empty((len(tensors), *tensors[0].shape), dtype=tensors[0].dtype, pin_memory=True)
    return torch.stack(tensors, out=out)


def read_bytes(source: ImageInput) -> bytes | Image.Image:
    """A path read into memory (the "read" stage); bytes and pictures pass through."""
    if isinstance(source, bytes | Image.Image):
        return source
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {source!s}: {exc.strerror or exc}") from exc
