"""The fusion trains itself on the corpus's own image+text items, and is kept only if it wins.

Training reads the items that are not held out (``evaluation.held_out``); the candidate
is judged on the held-out ones by the same code as `simmim eval retrieval`, against the
fusion in use and the plain CLIP mean. It is kept (an atomically written, fingerprinted
checkpoint) only when its fused Recall@5 (the mean of text→item and image→item) beats
both by ``margin`` and neither direction falls (by more than one held-out query);
otherwise the file is removed and nothing changes.
Every attempt is appended to ``models/fusion-attempts.jsonl``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import Engine

from encoder.encoder import Encoder
from encoder.fusion import load_fusion
from encoder.train.evaluation import (
    RetrievalReport,
    content_order,
    evaluate_cache,
    in_use,
    split_held_out,
)
from encoder.train.pairs import corpus_pairs, count_corpus_items
from encoder.train.training import FusionTrainConfig, cache_towers, train_fusion
from simmim.clock import utcnow
from simmim.paths import DataLayout

log = logging.getLogger(__name__)
ATTEMPTS_FILE = "fusion-attempts.jsonl"


@dataclass
class FusionAttempt:
    at: str
    train_pairs: int
    held_out_pairs: int
    accepted: bool
    reason: str
    checkpoint: str | None = None
    before: RetrievalReport | None = None  # the fusion in use (or the CLIP mean)
    after: RetrievalReport | None = None  # the candidate
    corpus_items: int = 0  # image+text items in the corpus then (new ones start the next)
    switched: dict[str, object] | None = None  # what making it the fusion in use did

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def self_train_fusion(
    base: Encoder,
    current: Encoder,
    engine: Engine,
    layout: DataLayout,
    *,
    min_pairs: int = 200,
    margin: float = 0.02,
    config: FusionTrainConfig = FusionTrainConfig(),
    switch: Callable[[Path], dict[str, object]] | None = None,
) -> FusionAttempt:
    """``base``: the encoder without a fusion (training starts from the CLIP mean);
    ``current``: the encoder as configured now (what the candidate must beat).
    ``switch``: called with a kept checkpoint to put it in use (re-index and swap); if it
    fails the checkpoint is removed, the attempt recorded as not kept, and the error raised."""
    corpus = count_corpus_items(engine)
    train, held = (
        sorted(side, key=content_order) for side in split_held_out(corpus_pairs(engine, layout))
    )
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    attempt = FusionAttempt(
        stamp, len(train), len(held), accepted=False, reason="", corpus_items=corpus
    )
    if len(train) < min_pairs or len(held) < 4:
        attempt.reason = (
            f"{len(train)} training / {len(held)} held-out image+text items; needs {min_pairs} / 4"
        )
        return _record(layout, attempt)
    layout.models.mkdir(parents=True, exist_ok=True)
    final = layout.models / f"fusion-self-{stamp}.safetensors"
    candidate_path = final.with_suffix(".candidate")
    train_fusion(base, [p.pair for p in train], candidate_path, config)
    candidate = load_fusion(candidate_path, backbone=base.backbone.fingerprint).to(base.device)
    cache, kept = cache_towers(base, [p.pair for p in held], spans_per_item=1, seed=0)
    pictures = [held[row].image_sha256 for row in kept]
    now_fusion = in_use(current)
    attempt.before = evaluate_cache(
        cache,
        now_fusion,
        base.device,
        fusion_name="fusion" if now_fusion else "clip-mean",
        pictures=pictures,
    )
    attempt.after = evaluate_cache(
        cache, candidate.eval(), base.device, fusion_name=final.name, pictures=pictures
    )
    now, mean, after = (
        acceptance_r5(attempt.before.directions),
        acceptance_r5(attempt.before.clip_mean),
        acceptance_r5(attempt.after.directions),
    )
    best_now = max(now, mean)
    # A fall of one held-out query is below what the sample can measure; more is a fall.
    one_query = 1.0 / attempt.after.n
    no_fall = all(
        attempt.after.directions[d]["r5"] >= attempt.before.directions[d]["r5"] - one_query - 1e-6
        for d in FUSED_DIRECTIONS
    )
    if after >= best_now + margin and no_fall:
        candidate_path.replace(final)  # same folder: an atomic rename
        attempt.accepted, attempt.checkpoint = True, str(final)
        attempt.reason = f"fused R@5 {after:.3f} vs {best_now:.3f} (+{margin} needed)"
        if switch is not None:
            try:
                attempt.switched = switch(final)
            except BaseException as exc:
                final.unlink(missing_ok=True)
                attempt.accepted, attempt.checkpoint = False, None
                attempt.reason += f"; not put in use, the re-index failed: {exc}"
                _record(layout, attempt)
                raise
    else:
        candidate_path.unlink(missing_ok=True)
        attempt.reason = (
            f"not better by {margin} in both directions: fused R@5 {after:.3f} vs "
            f"{best_now:.3f} (text→item {attempt.after.fused_r5:.3f} vs "
            f"{attempt.before.fused_r5:.3f})"
        )
    return _record(layout, attempt)


FUSED_DIRECTIONS = ("fused_text_to_item", "fused_image_to_item")


def acceptance_r5(directions: dict[str, dict[str, float]]) -> float:
    """The acceptance score: mean Recall@5 of the two ways into the fused space."""
    return sum(directions[d]["r5"] for d in FUSED_DIRECTIONS) / len(FUSED_DIRECTIONS)


def _record(layout: DataLayout, attempt: FusionAttempt) -> FusionAttempt:
    log.info(
        "fusion self-training: %s (%s)",
        "accepted" if attempt.accepted else "kept the old",
        attempt.reason,
    )
    layout.models.mkdir(parents=True, exist_ok=True)
    with (layout.models / ATTEMPTS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(attempt.to_dict()) + "\n")
    return attempt


def attempts(layout: DataLayout, *, last: int = 20) -> list[dict[str, object]]:
    path: Path = layout.models / ATTEMPTS_FILE
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()[-last:]
    return [json.loads(line) for line in lines if line.strip()]
