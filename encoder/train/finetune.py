"""Contrastive fine-tuning of the open_clip towers on a user's image-text pairs.

For domains far from the pre-training data (and for the demo, which fits the tiny model
when no pretrained weights are reachable). open_clip's ClipLoss; held-out Recall@k for
text->image and image->text before and after; the result is a plain open_clip
checkpoint that SIMMIM_ENCODER__PRETRAINED can point at.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from safetensors.torch import save_file
from tqdm import tqdm

from encoder.encoder import Encoder
from encoder.errors import EncoderError
from encoder.fitted import FITTED_ON_KEY
from encoder.towers import image_tower
from encoder.train.pairs import Pair
from encoder.train.training import BestEpoch, RecallReport, recall_at_k, recall_score, split_rows
from simmim.files import atomic_write

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneTrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-5  # gentle for pretrained weights; a random-init model wants ~1e-3
    weight_decay: float = 0.1
    val_fraction: float = 0.2
    patience: int = 3
    seed: int = 0
    # Train the image tower only, towards the fixed text tower (LiT, reversed): keeps the
    # text space as it was, for text-to-text search, when the text side has little to learn.
    freeze_text: bool = False


def _decode(encoder: Encoder, pairs: Sequence[Pair]) -> tuple[torch.Tensor, list[str]]:
    pixels, texts = [], []
    for pair in tqdm(pairs, desc="decode", unit="image", delay=3, leave=False):
        try:
            pixels.append(encoder.load_pixels(pair.image).half())
            texts.append(pair.text)
        except ValueError as exc:
            log.warning("skipping %s: %s", pair.image, exc)
    if len(pixels) < 4:
        raise EncoderError(
            f"only {len(pixels)} usable image-text pairs; fine-tuning needs at least 4"
        )
    return torch.stack(pixels), texts


def _embed(
    encoder: Encoder, pixels: torch.Tensor, ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    model, device = encoder.backbone.model, encoder.device
    image = image_tower(model, pixels.to(device).float()).embeds
    text = F.normalize(model.encode_text(ids.to(device)).float(), dim=-1)
    return image, text


def _recalls(
    encoder: Encoder, pixels: torch.Tensor, ids: torch.Tensor
) -> dict[str, dict[int, float]]:
    encoder.backbone.model.eval()
    with torch.no_grad():
        parts = [
            _embed(encoder, pixels[i : i + 64], ids[i : i + 64]) for i in range(0, len(ids), 64)
        ]
    image = torch.cat([p[0] for p in parts])
    text = torch.cat([p[1] for p in parts])
    return {"text_to_image": recall_at_k(text, image), "image_to_text": recall_at_k(image, text)}


def train_backbone(
    encoder: Encoder,
    pairs: Sequence[Pair],
    out_path: Path,
    config: BackboneTrainConfig = BackboneTrainConfig(),
    *,
    fitted_on: str | None = None,
) -> RecallReport:
    """Fine-tune ``encoder``'s backbone in place; saves the best state by held-out recall.

    ``fitted_on``: the corpus id of the data dir the pairs came from (``DataLayout.
    corpus_id``), kept in the checkpoint so search on other data can warn."""
    torch.manual_seed(config.seed)
    pixels, texts = _decode(encoder, pairs)
    ids = encoder.backbone.tokenizer(texts)  # type: ignore[misc]
    train_rows, val_rows = split_rows(len(texts), config.val_fraction, config.seed)
    model, _device = encoder.backbone.model, encoder.device

    before = _recalls(encoder, pixels[val_rows], ids[val_rows])
    best, epochs_run = BestEpoch(model, recall_score(before), config.patience), 0
    loss_fn = ClipLoss()
    model.requires_grad_(True)
    if config.freeze_text:
        for name, parameter in model.named_parameters():
            if not name.startswith("visual.") and name != "logit_scale":
                parameter.requires_grad_(False)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    generator = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = train_rows[torch.randperm(len(train_rows), generator=generator)]
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            if len(rows) < 2:
                continue
            image, text = _embed(encoder, pixels[rows], ids[rows])
            loss = loss_fn(image, text, model.logit_scale.exp().clamp(max=100))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        epochs_run = epoch
        if best.should_stop(
            model, epoch, recall_score(_recalls(encoder, pixels[val_rows], ids[val_rows]))
        ):
            break

    best.restore(model)
    model.eval().requires_grad_(False)
    after = _recalls(encoder, pixels[val_rows], ids[val_rows])
    report = RecallReport(
        n_train=len(train_rows),
        n_val=len(val_rows),
        epochs_run=epochs_run,
        trained=after,
        baseline=before,
        baseline_name="before fine-tuning",
        extra={"best_epoch": best.epoch},
    )
    metadata = {
        "simmim_kind": "backbone",
        "base": encoder.backbone.fingerprint,
        "report": json.dumps(report.to_dict()),
        "train_config": json.dumps(asdict(config)),
        **({FITTED_ON_KEY: fitted_on} if fitted_on else {}),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(out_path, lambda tmp: save_file(tensors, tmp, metadata))
    return report


def fit_text_pairs(
    encoder: Encoder,
    pairs: Sequence[tuple[str, str]],
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
) -> float:
    """Contrastive text-to-text fitting of the text tower: (short, long) pairs such as a
    headline and the item's full text, so a headline query finds its item.

    For a model with no language knowledge (the demo's tiny model from random weights);
    a pretrained tower does not need it. Returns the held-out short→long Recall@1.
    """
    if len(pairs) < 8:
        raise EncoderError(f"only {len(pairs)} text pairs; text fitting needs at least 8")
    torch.manual_seed(seed)
    model, device = encoder.backbone.model, encoder.device
    tokenize = encoder.backbone.tokenizer
    short = tokenize([a for a, _ in pairs])  # type: ignore[misc]
    long = tokenize([b for _, b in pairs])  # type: ignore[misc]
    train_rows, val_rows = split_rows(len(pairs), 0.2, seed)
    model.requires_grad_(True)
    for name, parameter in model.named_parameters():
        if name.startswith("visual."):
            parameter.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    loss_fn = ClipLoss()

    def embed(ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(model.encode_text(ids.to(device)).float(), dim=-1)

    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = train_rows[torch.randperm(len(train_rows), generator=generator)]
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            if len(rows) < 2:
                continue
            loss = loss_fn(
                embed(short[rows]), embed(long[rows]), model.logit_scale.exp().clamp(max=100)
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        recall = recall_at_k(embed(short[val_rows]), embed(long[val_rows]), ks=(1,))[1]
    model.requires_grad_(True)
    return float(recall)
