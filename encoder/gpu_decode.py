"""JPEG decoding on the GPU: nvJPEG through torchvision, a batch of files per call.

On a GPU the CPU decode is the whole bottleneck (the model alone is ~36x faster than the
threaded PIL pipeline on a 16-core H200 host). Only files the GPU can decode the way the
CPU path would go this way: a JPEG of an allowed format within the pixel limit, RGB or
greyscale, upright (no EXIF rotation, which nvJPEG ignores). The header is read on the
CPU first (no pixel decode), so a bomb is refused before any device memory is spent.
Everything else, and any file nvJPEG rejects, takes the CPU path and gets its reasons.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Collection

import torch
from PIL import Image

from simmim.image_formats import NEVER_OPENED

log = logging.getLogger(__name__)

ORIENTATION = 0x0112


def gpu_decode_available(device: torch.device) -> bool:
    """CUDA and a torchvision whose ``decode_jpeg`` takes a list and a device (>= 0.19)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    try:
        from torchvision.io import decode_jpeg  # noqa: F401
    except ImportError:
        return False
    return True


def device_decodable(data: bytes, *, max_pixels: int, formats: Collection[str]) -> bool:
    """Whether the GPU may decode ``data``: a header read, never a pixel decode."""
    if "JPEG" not in set(formats) - NEVER_OPENED or data[:3] != b"\xff\xd8\xff":
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data), formats=["JPEG"])
            width, height = image.size
            if width * height > max_pixels or image.mode not in ("RGB", "L"):
                return False
            return int(image.getexif().get(ORIENTATION, 1)) == 1
    except Exception:
        return False


def decode_on_device(datas: list[bytes], device: torch.device) -> list[torch.Tensor | None]:
    """[3, H, W] uint8 tensors on ``device``, one per file; None where nvJPEG failed (the
    caller decodes those on the CPU). One batched call, then one by one if it fails."""
    from torchvision.io import ImageReadMode, decode_jpeg

    encoded = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    try:
        return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
    except RuntimeError as exc:
        log.debug("batched GPU decode failed (%s); decoding one by one", exc)
    out: list[torch.Tensor | None] = []
    for one in encoded:
        try:
            out.append(decode_jpeg(one, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            out.append(None)
    return out
