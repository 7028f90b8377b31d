"""How well search works on the user's own corpus: `simmim eval retrieval`.

Items with both an image and a text are their own relevance judgements: an item's text
should find its image and the other way round, and a remembered piece of its text (a
span, as a user would type it) should find the item in the fused space. A fixed share of
items, chosen by their image's content hash (stable as the corpus grows and across
machines and crawl orders; copies of one picture fall on the same side), is the
**held-out** set: evaluation reads it, training never does. Each
direction reports Recall@1/5/10 and MRR, for the configured fusion and for the plain CLIP
mean of the two towers side by side.

The numbers are ranks within the held-out sample (the gallery is the sample, not the
whole index), so they compare models and fusions on one corpus, not corpora.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from sqlalchemy import Engine

from encoder.encoder import Encoder
from encoder.errors import EncoderError
from encoder.fusion import SemanticMemoryFusion
from encoder.train.pairs import CorpusPair, Pair, corpus_pairs
from encoder.train.training import TowerCache, cache_towers, key_codes, right_answer_rank, same_code
from simmim.clock import utcnow
from simmim.files import atomic_write_bytes
from simmim.paths import DataLayout

KS = (1, 5, 10)
HELD_OUT_PERMILLE = 200  # a fifth of the image+text items are held out
RESULT_FILE = "retrieval-eval.json"


def held_out(image_sha256: str) -> bool:
    """Deterministic: the image's SHA-256 is already a uniform hash."""
    return int(image_sha256[:8], 16) % 1000 < HELD_OUT_PERMILLE


def split_held_out(pairs: Sequence[CorpusPair]) -> tuple[list[CorpusPair], list[CorpusPair]]:
    """(training pairs, held-out pairs)."""
    train = [p for p in pairs if not held_out(p.image_sha256)]
    return train, [p for p in pairs if held_out(p.image_sha256)]


def content_order(pair: CorpusPair) -> tuple[str, str, int]:
    """By content, not by id: the same corpus crawled in another order gives the same
    training run and the same figures (ids only break exact ties)."""
    return pair.image_sha256, pair.pair.text, pair.item_id


def ranking(
    queries: torch.Tensor, gallery: torch.Tensor, relevant: torch.Tensor | None = None
) -> dict[str, float]:
    """Query i's right answers are the gallery rows ``relevant[i]`` marks (default: row i;
    both L2-normalised). Its rank is the number of wrong rows scoring at least its best
    right one: ties count against."""
    rank = right_answer_rank(queries @ gallery.T, relevant, ties_against=True)
    out = {f"r{k}": float((rank < k).float().mean()) for k in KS}
    out["mrr"] = float((1.0 / (rank.float() + 1)).mean())
    return out


@dataclass
class RetrievalReport:
    n: int
    fusion: str  # "clip-mean" or the checkpoint's name
    directions: dict[str, dict[str, float]]  # e.g. fused_text_to_item → {r1, r5, r10, mrr}
    clip_mean: dict[str, dict[str, float]]  # the fused directions with the plain CLIP mean
    at: str = field(default_factory=lambda: utcnow().isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def fused_r5(self) -> float:
        return self.directions["fused_text_to_item"]["r5"]

    @property
    def mean_r5(self) -> float:
        return self.clip_mean["fused_text_to_item"]["r5"]


def evaluate_cache(
    cache: TowerCache,
    fusion: SemanticMemoryFusion | None,
    device: torch.device,
    *,
    fusion_name: str,
    pictures: Sequence[object] | None = None,
) -> RetrievalReport:
    """``pictures``: each row's picture (e.g. its image hash). Items often share one (a
    site's stock photo, a company's logo); any item carrying the picture answers a query
    by that picture, and any copy of the picture answers its text."""
    rows = torch.arange(len(cache))
    batch = cache.take(rows, device)
    images = F.normalize(batch["image_embeds"], dim=-1)
    texts = F.normalize(batch["text_embeds"], dim=-1)
    spans = F.normalize(cache.span_embeds[:, 0].to(device).float(), dim=-1)
    mean = F.normalize(batch["image_embeds"] + batch["text_embeds"], dim=-1)
    with torch.no_grad():
        fused = mean if fusion is None else fusion(**batch).fused
    keys = pictures if pictures is not None else range(len(cache))
    picture = same_code(key_codes(keys).to(device))
    towers = {
        "text_to_image": ranking(texts, images, picture),
        "image_to_text": ranking(images, texts, picture),
    }
    return RetrievalReport(
        n=len(cache),
        fusion=fusion_name,
        directions={
            **towers,
            "fused_text_to_item": ranking(spans, fused),
            "fused_image_to_item": ranking(images, fused, picture),
        },
        clip_mean={
            "fused_text_to_item": ranking(spans, mean),
            "fused_image_to_item": ranking(images, mean, picture),
        },
    )


def evaluate_pairs(
    encoder: Encoder, pairs: Sequence[Pair], *, fusion_name: str | None = None
) -> RetrievalReport:
    """The encoder's own fusion (its checkpoint, or the CLIP mean without one)."""
    if len(pairs) < 4:
        raise EncoderError(
            f"only {len(pairs)} held-out image+text items; evaluation needs at least 4",
            hint="crawl more items that have both an image and a text",
        )
    cache, kept = cache_towers(encoder, pairs, spans_per_item=1, seed=0)
    module = in_use(encoder)
    name = fusion_name or ("fusion" if module is not None else "clip-mean")
    pictures = [pairs[row].image for row in kept]  # stored images: a path per content hash
    return evaluate_cache(cache, module, encoder.device, fusion_name=name, pictures=pictures)


def in_use(encoder: Encoder) -> SemanticMemoryFusion | None:
    """The encoder's fusion, None while it is the untrained identity (the CLIP mean)."""
    return None if encoder.fusion.is_identity else encoder.fusion


def evaluate_corpus(
    encoder: Encoder,
    engine: Engine,
    layout: DataLayout,
    *,
    sample: int | None = None,
    fusion_name: str | None = None,
) -> RetrievalReport:
    _, held = split_held_out(corpus_pairs(engine, layout))
    chosen = sorted(held, key=content_order)[: sample or None]
    return evaluate_pairs(encoder, [p.pair for p in chosen], fusion_name=fusion_name)


def save_report(layout: DataLayout, report: RetrievalReport) -> Path:
    """The last evaluation, for `simmim status` and the System page (atomic replace)."""
    path = layout.models / RESULT_FILE
    atomic_write_bytes(path, json.dumps(report.to_dict()).encode())
    return path


def last_report(layout: DataLayout) -> RetrievalReport | None:
    path = layout.models / RESULT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RetrievalReport(**data)
    except (OSError, ValueError, TypeError):
        return None
