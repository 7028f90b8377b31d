"""Turning an image input (path, bytes, PIL image) into a decoded RGB picture, safely."""

from __future__ import annotations

import io
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import TypeAlias

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from simmim.image_formats import NEVER_OPENED, SAFE_FORMATS

ImageInput: TypeAlias = str | Path | bytes | Image.Image


class ImageDecodeError(ValueError):
    """This one image cannot be used; the batch it came in goes on without it."""


def open_image(
    source: ImageInput,
    *,
    max_pixels: int,
    draft_size: int | None = None,
    formats: Collection[str] = SAFE_FORMATS,
) -> Image.Image:
    """Decode to RGB, refusing decompression bombs, corrupt files and formats outside
    ``formats`` (never one of ``NEVER_OPENED``) with a reason.

    ``draft_size`` lets JPEG decoding scale down by DCT while decoding (never below the
    size asked for), which is much cheaper than decoding full size and resizing.
    """
    if isinstance(source, Image.Image):
        return to_rgb(_checked(source, max_pixels))
    allowed = sorted(set(formats) - NEVER_OPENED)
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {source!s}: {exc.strerror or exc}") from exc
    try:
        with stream, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=allowed)
            _checked(image, max_pixels)
            if draft_size is not None and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            return to_rgb(image)  # forces the full decode inside the guard
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(
            f"not a readable image of an allowed format ({', '.join(allowed)}; "
            "SIMMIM_IMAGE_FORMATS sets the list)"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"not a readable image: {exc}") from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB, as a viewer would show it.

    The EXIF orientation is applied (a phone photo stored sideways is embedded upright), and
    16/32-bit greyscale is scaled to 8 bits by its own range: PIL's plain ``convert`` clips
    it, which turns a 16-bit PNG almost entirely white.
    """
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        low, high = float(pixels.min()), float(pixels.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        image = Image.fromarray(((pixels - low) * scale).astype(np.uint8), mode="L")
    return image.convert("RGB")


def _checked(image: Image.Image, max_pixels: int) -> Image.Image:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"image too large: {width}x{height} = {width * height} pixels exceeds the "
            f"limit of {max_pixels} (SIMMIM_MAX_IMAGE_PIXELS)"
        )
    return image
