"""Project architectures (e.g. ``simmim-tiny``) added to open_clip's registry as data files."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import open_clip

CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
TINY_MODEL = "simmim-tiny"


@cache
def register_model_configs() -> None:
    """Idempotent: open_clip rescans the folder, our names join its own."""
    open_clip.add_model_config(CONFIG_DIR)
