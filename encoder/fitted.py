"""Which corpus a fine-tuned backbone was fitted on, and a warning when it is not this one.

A tiny model fitted on the demo's forty pictures, pointed at a data dir of real posts,
ranks results by noise, and nothing in the results says so. A checkpoint written by
``train_backbone`` on a data dir's own pairs records that data dir's corpus id; search
(CLI, dashboard, API) compares it with the data dir it runs on.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from simmim.paths import DataLayout
from simmim.settings import Settings

FITTED_ON_KEY = "simmim_fitted_on"


@lru_cache(maxsize=16)
def _header_fitted_on(path: str, size: int, mtime_ns: int) -> str | None:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as handle:
            return (handle.metadata() or {}).get(FITTED_ON_KEY)
    except Exception:  # not a safetensors file, or damaged: the loader says so itself
        return None


def fitted_on(pretrained: str) -> str | None:
    """The corpus id in a safetensors checkpoint's header (no tensors read), if any."""
    path = Path(pretrained).expanduser()
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    stat = path.stat()
    return _header_fitted_on(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def fitted_elsewhere(settings: Settings) -> str | None:
    """A warning when the configured backbone was fitted on another data dir's corpus."""
    corpus = fitted_on(settings.encoder.pretrained)
    if corpus is None:
        return None
    if DataLayout(settings.data_dir).corpus_id(create=False) == corpus:
        return None
    name = Path(settings.encoder.pretrained).name
    return (
        f"the model {settings.encoder.model} ({name}) was fitted on another data dir's "
        "corpus, not this one: search results here mean little. Use a pretrained open_clip "
        "model (SIMMIM_ENCODER__MODEL=ViT-B-32 SIMMIM_ENCODER__PRETRAINED=laion2b_s34b_b79k) "
        "or fit one on this corpus with `simmim train-backbone`, then `simmim index --rebuild`"
    )
