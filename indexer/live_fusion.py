"""Which fusion serves: the one the live index was built with.

The live index is the authority: its fingerprint names the fusion its fused vectors were
made with, so a rebuild's swap *is* the switch, one atomic step for every process. A
process that serves or writes (scheduler, worker, API, dashboard, CLI) follows it: when
the index's fusion differs from the encoder's, it takes the checkpoint with that hash
from ``models/`` (the towers are kept; only the small fusion loads). Serving needs only
this module; training the next fusion is ``indexer.fusion_switch``'s.
"""

from __future__ import annotations

import logging
from pathlib import Path

from encoder import Encoder
from encoder.fingerprint import find_fusion, split_fingerprint
from indexer.index import stores_status
from simmim.paths import DataLayout
from simmim.settings import Settings

log = logging.getLogger(__name__)


def indexed_fingerprint(settings: Settings) -> str | None:
    """The model fingerprint of the live fused space (None: nothing built yet)."""
    manifests = stores_status(settings)
    manifest = manifests.get("fused") or next(iter(manifests.values()), None)
    return str(manifest["fingerprint"]) if manifest else None


def following_index(
    settings: Settings, encoder: Encoder, fingerprint: str | None = None
) -> Encoder:
    """``encoder`` with the fusion the live index was built with (``fingerprint``, when the
    caller has read it already); unchanged where that is not ours to follow."""
    if settings.encoder.fusion_checkpoint is not None:
        return encoder  # the user's choice; a mismatch is reported where stores open
    fingerprint = fingerprint or indexed_fingerprint(settings)
    if fingerprint is None or fingerprint == encoder.fingerprint:
        return encoder
    backbone, fusion = split_fingerprint(fingerprint)
    if backbone != encoder.backbone.fingerprint:
        return encoder  # another model built the index: `simmim index --rebuild` says so
    if fusion == "fusion:none":
        return encoder.with_fusion(None)
    path = fusion_of(settings, fingerprint)
    if path is None:
        log.warning("the index was built with %s, which is not in models/", fusion)
        return encoder
    log.info("following the index: fusion %s", path.name)
    return encoder.with_fusion(path)


def fusion_of(settings: Settings, fingerprint: str) -> Path | None:
    """The checkpoint in models/ that a model fingerprint's fusion part names (None: the
    untrained fusion, or a checkpoint that is not there)."""
    return find_fusion(DataLayout(settings.data_dir).models, split_fingerprint(fingerprint)[1])
