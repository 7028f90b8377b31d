"""Training the Semantic Memory fusion on frozen towers, and the recall report that judges it.

Tower outputs are computed once and cached, so an epoch only runs the small fusion module.
The loss is symmetric InfoNCE between an item's fused vector and its queries: its image
(e_v) and its text or a random span of it (e_t), against the other items of the batch.
"""

from __future__ import annotations

import copy
import logging
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from encoder.device import inference
from encoder.encoder import Encoder
from encoder.errors import EncoderError
from encoder.fusion import SemanticMemoryFusion, save_fusion
from encoder.loading import fusion_config_for
from encoder.towers import image_tower, text_tower
from encoder.train.pairs import Pair

log = logging.getLogger(__name__)
KS = (1, 5, 10)


@dataclass(frozen=True)
class FusionTrainConfig:
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    val_fraction: float = 0.2
    patience: int = 8  # epochs without validation gain before stopping
    spans_per_item: int = 3  # random text spans cached per item as extra text queries
    width: int | None = None  # fusion width; default from the backbone
    seed: int = 0


@dataclass
class RecallReport:
    """Held-out Recall@k, trained model against a baseline, per query direction."""

    n_train: int
    n_val: int
    epochs_run: int
    trained: dict[str, dict[int, float]]
    baseline: dict[str, dict[int, float]]
    baseline_name: str = "clip-mean"
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def right_answer_rank(
    scores: torch.Tensor, relevant: torch.Tensor | None = None, *, ties_against: bool = False
) -> torch.Tensor:
    """Per query (row of ``scores``), how many wrong gallery rows score above its best
    right one (``relevant[i]`` marks query i's right rows; default: row i alone). With
    ``ties_against`` a wrong row scoring the same also ranks ahead."""
    if relevant is None:
        relevant = torch.eye(*scores.shape, dtype=torch.bool, device=scores.device)
    best = scores.masked_fill(~relevant, float("-inf")).max(dim=1, keepdim=True).values
    ahead = scores >= best if ties_against else scores > best
    return (ahead & ~relevant).sum(dim=1)


def recall_at_k(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    ks: Sequence[int] = KS,
    relevant: torch.Tensor | None = None,
) -> dict[int, float]:
    """Query i's right answers: gallery row i, or the rows ``relevant[i]`` marks; both
    L2-normalised."""
    rank = right_answer_rank(queries @ gallery.T, relevant)
    return {k: float((rank < k).float().mean()) for k in ks}


def key_codes(keys: Iterable[object]) -> torch.Tensor:
    """One integer per key, equal where the keys are (e.g. items sharing a picture)."""
    ids: dict[object, int] = {}
    return torch.tensor([ids.setdefault(key, len(ids)) for key in keys])


def same_code(codes: torch.Tensor) -> torch.Tensor:
    """[n, n]: True where rows i and j carry the same code."""
    return codes[:, None] == codes[None, :]


def text_spans(text: str, count: int, rng: random.Random) -> list[str]:
    """Contiguous word windows of 40-80 % of the text: what a user might remember of it."""
    words = text.split()
    if len(words) < 4:
        return [text] * count
    spans = []
    for _ in range(count):
        length = max(2, int(len(words) * rng.uniform(0.4, 0.8)))
        start = rng.randrange(0, len(words) - length + 1)
        spans.append(" ".join(words[start : start + length]))
    return spans


@dataclass
class TowerCache:
    """Frozen tower outputs for N items, kept in fp16 on the CPU."""

    image_embeds: torch.Tensor  # [n, D]
    patch_tokens: torch.Tensor  # [n, P, d_v]
    text_embeds: torch.Tensor  # [n, D]
    token_states: torch.Tensor  # [n, L, d_t]
    token_mask: torch.Tensor  # [n, L]
    span_embeds: torch.Tensor  # [n, spans, D] text queries

    def __len__(self) -> int:
        return len(self.image_embeds)

    def take(self, rows: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        return {
            "image_embeds": self.image_embeds[rows].to(device).float(),
            "patch_tokens": self.patch_tokens[rows].to(device).float(),
            "has_image": torch.ones(len(rows), dtype=torch.bool, device=device),
            "text_embeds": self.text_embeds[rows].to(device).float(),
            "token_states": self.token_states[rows].to(device).float(),
            "token_mask": self.token_mask[rows].to(device),
        }


def cache_towers(
    encoder: Encoder, pairs: Sequence[Pair], spans_per_item: int, seed: int
) -> tuple[TowerCache, list[int]]:
    """Run the frozen towers once over every pair; returns the cache and the rows kept."""
    rng = random.Random(seed)
    model, device = encoder.backbone.model, encoder.device
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("ev", "pv", "et", "ts", "tm", "sp")}
    kept: list[int] = []
    size = encoder.batch_size
    bar = tqdm(total=len(pairs), desc="cache towers", unit="pair", delay=3, leave=False)
    for start in range(0, len(pairs), size):
        chunk = pairs[start : start + size]
        pixels, rows = [], []
        for offset, pair in enumerate(chunk):
            try:
                pixels.append(encoder.load_pixels(pair.image))
                rows.append(offset)
            except ValueError as exc:
                log.warning("skipping %s: %s", pair.image, exc)
        bar.update(len(chunk))
        if not rows:
            continue
        texts = [chunk[r].text for r in rows]
        spans = [s for t in texts for s in text_spans(t, spans_per_item, rng)]
        with inference(device):
            v = image_tower(model, torch.stack(pixels).to(device))
            t = text_tower(model, encoder.backbone.tokenizer(texts).to(device))  # type: ignore[misc]
            s = text_tower(model, encoder.backbone.tokenizer(spans).to(device))  # type: ignore[misc]
        parts["ev"].append(v.embeds.half().cpu())
        parts["pv"].append(v.patch_tokens.half().cpu())
        parts["et"].append(t.embeds.half().cpu())
        parts["ts"].append(t.token_states.half().cpu())
        parts["tm"].append(t.token_mask.cpu())
        parts["sp"].append(s.embeds.half().cpu().view(len(rows), spans_per_item, -1))
        kept.extend(start + r for r in rows)
    bar.close()
    if len(kept) < 4:
        raise EncoderError(f"only {len(kept)} usable image-text pairs; training needs at least 4")
    cache = TowerCache(*(torch.cat(parts[k]) for k in ("ev", "pv", "et", "ts", "tm", "sp")))
    return cache, kept


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(2, round(n * val_fraction))
    if n - n_val < 2:
        raise EncoderError(f"{n} pairs are too few to hold {n_val} out for validation")
    return order[n_val:], order[:n_val]


def evaluate(
    fusion: SemanticMemoryFusion | None,
    cache: TowerCache,
    rows: torch.Tensor,
    device: torch.device,
    pictures: torch.Tensor | None = None,
) -> dict[str, dict[int, float]]:
    """text->item (query: the first cached span) and image->item Recall@k on ``rows``; an
    image query is answered by any item carrying that picture (``pictures``: codes)."""
    batch = cache.take(rows, device)
    with torch.no_grad():
        if fusion is None:
            gallery = F.normalize(batch["image_embeds"] + batch["text_embeds"], dim=-1)
        else:
            gallery = fusion(**batch).fused
    text_queries = F.normalize(cache.span_embeds[rows, 0].to(device).float(), dim=-1)
    same = None if pictures is None else same_code(pictures[rows].to(device))
    return {
        "text_to_item": recall_at_k(text_queries, gallery),
        "image_to_item": recall_at_k(batch["image_embeds"], gallery, relevant=same),
    }


def recall_score(
    recalls: dict[str, dict[int, float]], floor: dict[str, dict[int, float]] | None = None
) -> float:
    """One number to compare epochs: the sum of every Recall@k of every direction. With a
    ``floor`` (the baseline), an epoch whose Recall@5 falls below it in any direction does
    not count: self-training keeps a fusion only if neither direction falls."""
    if floor is not None and any(recalls[d][5] < floor[d][5] for d in floor):
        return float("-inf")
    return sum(sum(r.values()) for r in recalls.values())


class BestEpoch:
    """Early stopping that keeps the best weights; epoch 0 is the starting point, so the
    result is never worse on held-out data than what training started from."""

    def __init__(self, module: nn.Module, start_score: float, patience: int) -> None:
        self.state = copy.deepcopy(module.state_dict())
        self.score = start_score
        self.epoch = 0
        self.patience = patience

    def should_stop(self, module: nn.Module, epoch: int, score: float) -> bool:
        log.info("epoch %d: validation score %.4f (best %.4f)", epoch, score, self.score)
        if score > self.score:
            self.state, self.score, self.epoch = copy.deepcopy(module.state_dict()), score, epoch
            return False
        return epoch - self.epoch >= self.patience

    def restore(self, module: nn.Module) -> None:
        module.load_state_dict(self.state)


def _info_nce(
    a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, same: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE; rows ``same`` marks (other items with the same picture) are not
    counted as negatives: pushing them apart would teach noise."""
    logits = scale * a @ b.T  # [batch, batch]
    labels = torch.arange(len(a), device=a.device)
    if same is not None:
        others = same & ~torch.eye(len(a), dtype=torch.bool, device=a.device)
        logits = logits.masked_fill(others, float("-inf"))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def train_fusion(
    encoder: Encoder,
    pairs: Sequence[Pair],
    out_path: Path,
    config: FusionTrainConfig = FusionTrainConfig(),
) -> RecallReport:
    torch.manual_seed(config.seed)
    device = encoder.device
    cache, kept = cache_towers(encoder, pairs, config.spans_per_item, config.seed)
    pictures = key_codes(str(pairs[row].image) for row in kept)  # shared pictures
    train_rows, val_rows = split_rows(len(cache), config.val_fraction, config.seed)

    fusion = SemanticMemoryFusion(fusion_config_for(encoder.backbone, config.width)).to(device)
    log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07), device=device))
    optimizer = torch.optim.AdamW(
        [*fusion.parameters(), log_scale], lr=config.lr, weight_decay=config.weight_decay
    )
    baseline = evaluate(None, cache, val_rows, device, pictures)
    best = BestEpoch(fusion, recall_score(baseline), config.patience)
    epochs_run = 0
    rng = torch.Generator().manual_seed(config.seed)
    span_choice = torch.Generator().manual_seed(config.seed + 1)

    for epoch in range(1, config.epochs + 1):
        fusion.train()
        order = train_rows[torch.randperm(len(train_rows), generator=rng)]
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            if len(rows) < 2:
                continue
            batch = cache.take(rows, device)
            fused = fusion(**batch).fused
            # text query: the full text or one of its spans, drawn per item
            pick = torch.randint(0, config.spans_per_item + 1, (len(rows),), generator=span_choice)
            spans = cache.span_embeds[rows].float()
            full = cache.text_embeds[rows].float()[:, None]
            text_query = F.normalize(
                torch.cat([full, spans], dim=1)[torch.arange(len(rows)), pick], dim=-1
            )
            scale = log_scale.exp().clamp(max=100)
            same = same_code(pictures[rows].to(device))
            loss = _info_nce(fused, text_query.to(device), scale) + _info_nce(
                fused, batch["image_embeds"], scale, same
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        epochs_run = epoch
        fusion.eval()
        score = recall_score(evaluate(fusion, cache, val_rows, device, pictures), baseline)
        if best.should_stop(fusion, epoch, score):
            break

    best.restore(fusion)  # never worse than the baseline on held-out items
    fusion.eval()
    trained = evaluate(fusion, cache, val_rows, device, pictures)
    report = RecallReport(
        n_train=len(train_rows),
        n_val=len(val_rows),
        epochs_run=epochs_run,
        trained=trained,
        baseline=baseline,
        extra={"best_epoch": best.epoch},
    )
    save_fusion(
        fusion,
        out_path,
        backbone=encoder.backbone.fingerprint,
        extra={"report": report.to_dict(), "train_config": asdict(config)},
    )
    return report


def summarize(report: RecallReport) -> list[tuple[str, str, str]]:
    """Rows (direction@k, baseline, trained) for printing."""
    rows = []
    for direction, values in report.trained.items():
        for k, value in values.items():
            rows.append(
                (f"{direction} R@{k}", f"{report.baseline[direction][k]:.3f}", f"{value:.3f}")
            )
    return rows
