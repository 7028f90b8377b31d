"""Turning an image input (path, bytes, PIL image) into a decoded RGB picture, safely."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TypeAlias

from PIL import Image

ImageInput: TypeAlias = str | Path | bytes | Image.Image


class ImageDecodeError(ValueError):
    """This one image cannot be used; the batch it came in goes on without it."""


def open_image(
    source: ImageInput, *, max_pixels: int, draft_size: int | None = None
) -> Image.Image:
    """Decode to RGB, refusing decompression bombs and corrupt files with a reason.

    ``draft_size`` lets JPEG decoding scale down by DCT while decoding (never below the
    size asked for), which is much cheaper than decoding full size and resizing.
    """
    if isinstance(source, Image.Image):
        return _checked(source, max_pixels).convert("RGB")
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {source!s}: {exc.strerror or exc}") from exc
    try:
        with stream, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)
            _checked(image, max_pixels)
            if draft_size is not None and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            return image.convert("RGB")  # forces the full decode inside the guard
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"not a readable image: {exc}") from exc


def _checked(image: Image.Image, max_pixels: int) -> Image.Image:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"image too large: {width}x{height} = {width * height} pixels exceeds the "
            f"limit of {max_pixels} (SIMMIM_CRAWLER__MAX_IMAGE_PIXELS)"
        )
    return image
