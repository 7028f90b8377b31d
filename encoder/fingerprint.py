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


def fusion_file_fingerprint(path: Path | None) -> str:
    if path is None:
        return "fusion:none"
    path = path.expanduser()
    return f"fusion:sha256:{file_sha256(path)[:16]}" if path.is_file() else "fusion:missing"


def fusion_fingerprint(settings: EncoderSettings) -> str:
    return fusion_file_fingerprint(settings.fusion_checkpoint)


def model_fingerprint(settings: EncoderSettings) -> str:
    return f"{backbone_fingerprint(settings)}+{fusion_fingerprint(settings)}"


def split_fingerprint(fingerprint: str) -> tuple[str, str]:
    """(backbone part, fusion part) of a model fingerprint."""
    backbone, _, fusion = fingerprint.rpartition("+")
    return backbone, fusion


@lru_cache(maxsize=64)
def _header(path: str, size: int, mtime_ns: int) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as handle:
            return dict(handle.metadata() or {})
    except Exception:  # not a safetensors file, or a damaged one: no metadata to trust
        return {}


def checkpoint_metadata(path: Path) -> dict[str, str]:
    """A safetensors file's header metadata (no tensors read; memoised on path, size and
    mtime like ``file_sha256``); empty for a missing, damaged or other file."""
    if path.suffix != ".safetensors" or not path.is_file():
        return {}
    stat = path.stat()
    return _header(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def is_fusion_file(path: Path) -> bool:
    """A SimMIM fusion checkpoint, judged by its safetensors header alone."""
    return checkpoint_metadata(path).get("simmim_kind") == "fusion"


def find_fusion(folder: Path, fusion_part: str) -> Path | None:
    """The checkpoint in ``folder`` whose hash the fingerprint's fusion part names: how a
    process finds the fusion an index was built with (self-training keeps them there).
    Only fusion checkpoints are hashed: fine-tuned backbones beside them are large."""
    if not fusion_part.startswith("fusion:sha256:") or not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.safetensors")):
        if is_fusion_file(path) and fusion_file_fingerprint(path) == fusion_part:
            return path
    return None
