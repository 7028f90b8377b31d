"""Small copies of stored images, made once at ingest, that encoding and the dashboard read.

A crawled photo is usually far larger than a model's input (224 or 336 px): decoding it in
full on every encode, re-encode and explanation is most of the input pipeline's cost
(img2dataset and LAION resize at download for the same reason). The copy keeps the
aspect ratio with its short side at ``size`` (at least the model's input, so the model
sees what it would have seen from the original, give or take JPEG noise); the original
stays for download. Pictures already that small get no copy: readers fall back to the
original.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from simmim.files import atomic_write_bytes

QUALITY = 90  # JPEG quality of the copies: the model's embedding moves by < 1e-3 in cosine


def needs_thumbnail(width: int, height: int, size: int) -> bool:
    """A copy only pays when it is clearly smaller than the original."""
    return size > 0 and min(width, height) > size * 1.25


def thumbnail_of(picture: Image.Image, size: int) -> Image.Image:
    """``picture`` (RGB) with its short side at ``size``: the same bicubic resampling as
    torchvision's ``Resize``, so a model input made from the copy matches one from the
    original within JPEG noise."""
    width, height = picture.size
    if width <= height:
        new = (size, int(size * height / width))
    else:
        new = (int(size * width / height), size)
    return picture.resize(new, Image.Resampling.BICUBIC)


def thumbnail_bytes(picture: Image.Image, size: int) -> bytes:
    buffer = io.BytesIO()
    thumbnail_of(picture, size).save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()


def write_thumbnail(path: Path, data: bytes) -> None:
    """Atomic and made once: a second writer of the same copy leaves the first in place."""
    if not path.exists():
        atomic_write_bytes(path, data)
