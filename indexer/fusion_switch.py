"""The periodic step that trains a better fusion and switches to it, and its status.

The switch is a rebuild's swap: the live index's fingerprint names the fusion its fused
vectors were made with, and every process follows it (``indexer.live_fusion``). An
explicit ``SIMMIM_ENCODER__FUSION_CHECKPOINT`` is never overridden, and self-training
leaves such a deployment alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from encoder import Encoder
from encoder.fingerprint import split_fingerprint
from encoder.train.pairs import count_corpus_items
from encoder.train.self_training import FusionAttempt, attempts, self_train_fusion
from encoder.train.training import FusionTrainConfig
from indexer.live_fusion import fusion_of, indexed_fingerprint
from indexer.pipeline.runner import rebuild_indexes
from simmim.locks import run_lock
from simmim.paths import DataLayout
from simmim.settings import Settings

log = logging.getLogger(__name__)
MIN_TRAIN_PAIRS = 32  # below this a contrastive fit says nothing; the held-out judge decides


def last_attempt(layout: DataLayout) -> dict[str, object] | None:
    tries = attempts(layout, last=1)
    return tries[-1] if tries else None


def new_items(engine: Engine, last: dict[str, object] | None) -> int:
    """Image+text items added since the ``last`` self-training attempt (all, before one)."""
    before = int(last.get("corpus_items") or 0) if last else 0  # type: ignore[call-overload]
    return max(count_corpus_items(engine) - before, 0)


@dataclass
class FusionStep:
    """What one run of the periodic step did: trained (``attempt``) or waited (``waiting``)."""

    attempt: FusionAttempt | None = None
    waiting: str | None = None

    def summary(self) -> dict[str, object]:
        if self.attempt is None:
            return {"waiting": self.waiting}
        attempt = self.attempt
        summary: dict[str, object] = {
            "accepted": attempt.accepted,
            "reason": attempt.reason,
            "train_pairs": attempt.train_pairs,
            "held_out_pairs": attempt.held_out_pairs,
        }
        if attempt.switched:
            summary.update(attempt.switched)
        return summary


def not_self_training(settings: Settings) -> str | None:
    """Why the periodic step does nothing in this deployment (None: it trains)."""
    if not settings.fusion.self_train:
        return "off (SIMMIM_FUSION__SELF_TRAIN=false)"
    if settings.encoder.fusion_checkpoint is not None:
        return (
            "SIMMIM_ENCODER__FUSION_CHECKPOINT is set: that fusion stays (unset it to let the "
            "fusion train itself)"
        )
    return None


def self_train_step(
    settings: Settings,
    engine: Engine,
    encoder: Encoder,
    *,
    force: bool = False,
    config: FusionTrainConfig | None = None,
    progress: bool = False,
) -> FusionStep:
    """Train, judge and (when it wins) switch, once enough image+text items are new since
    the last attempt (``force``: whatever the count). ``encoder``: the serving one."""
    fusion = settings.fusion
    held_back = None if force else not_self_training(settings)
    if held_back is not None:
        return FusionStep(waiting=held_back)
    layout = DataLayout(settings.data_dir)
    new = new_items(engine, last_attempt(layout))
    if not force and new < fusion.min_pairs:
        return FusionStep(
            waiting=f"{new} new image+text items of {fusion.min_pairs} "
            f"(SIMMIM_FUSION__MIN_PAIRS) since the last attempt"
        )

    def switch(checkpoint: Path) -> dict[str, object]:
        candidate = encoder.with_fusion(checkpoint)
        with run_lock(engine, "index", wait=True):  # writers wait; search reads the old set
            summary = rebuild_indexes(settings, engine, candidate, progress=progress)
        return {"reindexed": summary.indexed, "fingerprint": candidate.fingerprint}

    attempt = self_train_fusion(
        encoder.with_fusion(None),
        encoder,
        engine,
        layout,
        min_pairs=MIN_TRAIN_PAIRS,
        margin=fusion.margin,
        config=config or FusionTrainConfig(epochs=fusion.epochs),
        # An explicitly set fusion stays: a winner is kept for the user to choose.
        switch=switch if settings.encoder.fusion_checkpoint is None else None,
    )
    return FusionStep(attempt=attempt)


@dataclass
class FusionStatus:
    """Which fusion serves and how self-training stands (for `simmim status`, System page)."""

    in_use: str
    chosen_by: str
    self_train: bool
    new_items: int  # image+text items since the last attempt
    min_pairs: int
    last_attempt: dict[str, object] | None

    def line(self) -> str:
        if not self.self_train:
            training = "self-training off"
        elif self.new_items >= self.min_pairs:
            training = (
                f"self-training on: {self.new_items} new image+text items, enough for the "
                f"next try ({self.min_pairs} needed)"
            )
        else:
            training = (
                f"self-training on: {self.new_items} of the {self.min_pairs} new image+text "
                "items the next try needs"
            )
        line = f"{self.in_use} ({self.chosen_by}); {training}"
        if self.last_attempt is not None:
            tried = self.last_attempt
            verdict = (
                "put in use"
                if tried.get("switched")
                else ("kept" if tried.get("accepted") else "not kept")
            )
            line += f"; last attempt {tried.get('at')}: {verdict} ({tried.get('reason')})"
        return line


def fusion_status(settings: Settings, engine: Engine) -> FusionStatus:
    layout = DataLayout(settings.data_dir)
    explicit = settings.encoder.fusion_checkpoint
    if explicit is not None:
        in_use, chosen_by = explicit.name, "SIMMIM_ENCODER__FUSION_CHECKPOINT"
    else:
        chosen_by = "the one the live index was built with"
        fingerprint = indexed_fingerprint(settings)
        fusion = split_fingerprint(fingerprint)[1] if fingerprint else "fusion:none"
        found = fusion_of(settings, fingerprint) if fingerprint else None
        if found is not None:
            in_use = found.name
        elif fusion == "fusion:none":
            in_use = "CLIP mean (untrained fusion)"
        else:
            in_use = f"{fusion} (not in models/: rebuild the index)"
    last = last_attempt(layout)
    return FusionStatus(
        in_use=in_use,
        chosen_by=chosen_by,
        self_train=not_self_training(settings) is None,
        new_items=new_items(engine, last),
        min_pairs=settings.fusion.min_pairs,
        last_attempt=last,
    )
