"""The tiny open_clip model, with weights the tests create, loaded the way users load models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file

from encoder.registry import TINY_MODEL, register_model_configs


def write_tiny_weights(path: Path, seed: int = 1234) -> Path:
    register_model_configs()
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_MODEL, pretrained=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_weights(tmp_path_factory.mktemp("weights") / "simmim-tiny.safetensors")


def tiny_settings(weights: Path, **encoder: object) -> dict[str, object]:
    """Encoder settings for the tiny model; fp32 so results compare exactly with open_clip."""
    return {
        "model": TINY_MODEL,
        "pretrained": str(weights),
        "batch_size": 8,
        "workers": 2,
        "cpu_int8": False,
        **encoder,
    }


def picture(seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    """A distinct, deterministic picture: coloured shapes on a coloured ground."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, size[0] - 10)), int(rng.integers(0, size[1] - 10))
        draw.rectangle(
            (x0, y0, x0 + int(rng.integers(5, 40)), y0 + int(rng.integers(5, 40))),
            fill=tuple(int(c) for c in rng.integers(0, 255, 3)),
        )
    return image


def store_picture(layout: object, seed: int) -> str:
    """Put ``picture(seed)`` in the data directory's image store; returns its SHA-256."""
    import io

    from indexer.image_store import inspect_image, write_image

    buffer = io.BytesIO()
    picture(seed).save(buffer, format="PNG")
    stored = inspect_image(buffer.getvalue(), max_pixels=10**7)
    write_image(layout, buffer.getvalue(), stored.sha256)  # type: ignore[arg-type]
    return stored.sha256
