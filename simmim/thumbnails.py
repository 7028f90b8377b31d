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


def short_side_to(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the short side at ``size``, rounded as torchvision's ``Resize``
    rounds: the copies, the input stage and its GPU twin all resize to exactly this."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def thumbnail_of(picture: Image.Image, size: int) -> Image.Image:
    """``picture`` (RGB) with its short side at ``size``: the same bicubic resampling as
    torchvision's ``Resize``, so a model input made from the copy matches one from the
    original within JPEG noise."""
    return picture.resize(short_side_to(*picture.size, size), Image.Resampling.BICUBIC)


def jpeg_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()


def make_copy(picture: Image.Image, size: int) -> tuple[Image.Image, bytes] | None:
    """The small copy (the picture and its JPEG) where one pays, else None: resized once,
    for the file and for whoever encodes from it next."""
    if not needs_thumbnail(picture.width, picture.height, size):
        return None
    small = thumbnail_of(picture, size)
    return small, jpeg_bytes(small)


def write_thumbnail(path: Path, data: bytes) -> None:
    """Atomic and made once: a second writer of the same copy leaves the first in place."""
    if not path.exists():
        atomic_write_bytes(path, data)
