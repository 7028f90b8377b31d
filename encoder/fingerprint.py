"""Model fingerprints: which backbone and fusion produced a vector.

Vectors from different fingerprints live in different spaces; the index refuses to mix them.
Computed from settings alone (hashing local files), so it needs no model load.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from simmim.settings import EncoderSettings

RANDOM_WEIGHTS = ("", "none", "random")


def is_weights_path(pretrained: str) -> bool:
    return pretrained.endswith((".safetensors", ".pt", ".pth", ".bin")) or "/" in pretrained


@lru_cache(maxsize=32)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, memoised on (path, size, mtime) so repeated loads cost nothing."""
    stat = path.stat()
    return _file_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def backbone_fingerprint(settings: EncoderSettings) -> str:
    model, pretrained = settings.model, settings.pretrained
    if model.startswith(("hf-hub:", "local-dir:")):
        return model
    if pretrained.lower() in RANDOM_WEIGHTS:
        return f"{model}/random"
    if is_weights_path(pretrained) and Path(pretrained).expanduser().is_file():
        return f"{model}/sha256:{file_sha256(Path(pretrained).expanduser())[:16]}"
    return f"{model}/{pretrained}"


def fusion_fingerprint(settings: EncoderSettings) -> str:
    path = settings.fusion_checkpoint
    if path is None:
        return "fusion:none"
    return (
        f"fusion:sha256:{file_sha256(path.expanduser())[:16]}"
        if path.is_file()
        else "fusion:missing"
    )


def model_fingerprint(settings: EncoderSettings) -> str:
    return f"{backbone_fingerprint(settings)}+{fusion_fingerprint(settings)}"
