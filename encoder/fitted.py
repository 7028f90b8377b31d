"""Which corpus a fine-tuned backbone was fitted on, and a warning when it is not this one.

A tiny model fitted on the demo's forty pictures, pointed at a data dir of real posts,
ranks results by noise, and nothing in the results says so. A checkpoint written by
``train_backbone`` on a data dir's own pairs records that data dir's corpus id; search
(CLI, dashboard, API) compares it with the data dir it runs on.
"""

from __future__ import annotations

from pathlib import Path

from encoder.fingerprint import checkpoint_metadata
from simmim.paths import DataLayout
from simmim.settings import Settings

FITTED_ON_KEY = "simmim_fitted_on"


def fitted_on(pretrained: str) -> str | None:
    """The corpus id in a safetensors checkpoint's header (no tensors read), if any."""
    return checkpoint_metadata(Path(pretrained).expanduser()).get(FITTED_ON_KEY)


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
