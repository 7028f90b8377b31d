"""Batched encoding into the three spaces, with image decoding overlapped with model compute."""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from encoder.device import inference
from encoder.fingerprint import fusion_file_fingerprint
from encoder.fusion import SemanticMemoryFusion
from encoder.loading import Backbone, load_fusion_for
from encoder.towers import image_tower, text_tower
from simmim.image_formats import SAFE_FORMATS
from simmim.images import ImageDecodeError, ImageInput, open_image
from simmim.models import TEXT_MAX_CHARS, item_text

log = logging.getLogger(__name__)


@dataclass
class ItemInput:
    """One thing to encode: text, an image, or both. ``key`` comes back unchanged."""

    text: str | None = None
    image: ImageInput | None = None
    key: Any = None


@dataclass
class EncodedBatch:
    keys: list[Any]
    image: np.ndarray  # [n, D] float32 e_v; zero rows where has_image is False
    text: np.ndarray  # [n, D] float32 e_t; zero rows where has_text is False
    fused: np.ndarray  # [n, D] float32 f
    has_image: np.ndarray  # [n] bool
    has_text: np.ndarray  # [n] bool
    errors: dict[int, str] = field(default_factory=dict)  # row -> why its image was dropped
    visual_weights: np.ndarray | None = None  # [n, patches] a_v, with keep_attention
    text_weights: np.ndarray | None = None  # [n, context] a_t, with keep_attention
    token_ids: np.ndarray | None = None  # [n, context], with keep_attention

    def __len__(self) -> int:
        return len(self.keys)


class Encoder:
    """open_clip towers + Semantic Memory fusion. Build it with :func:`encoder.load_encoder`."""

    def __init__(
        self,
        backbone: Backbone,
        fusion: SemanticMemoryFusion,
        *,
        fingerprint: str,
        batch_size: int = 64,
        workers: int = 2,
        max_image_pixels: int = 50_000_000,
        image_formats: Collection[str] = SAFE_FORMATS,
    ) -> None:
        self.backbone = backbone
        self.fusion = fusion
        self.fingerprint = fingerprint
        self.batch_size = batch_size
        self.workers = workers
        self.max_image_pixels = max_image_pixels
        self.image_formats = image_formats

    def with_fusion(self, path: Path | None) -> Encoder:
        """The same towers (shared, not reloaded) with another fusion: ``None`` is the
        untrained one, which equals the CLIP mean."""
        return Encoder(
            self.backbone,
            load_fusion_for(self.backbone, path),
            fingerprint=f"{self.backbone.fingerprint}+{fusion_file_fingerprint(path)}",
            batch_size=self.batch_size,
            workers=self.workers,
            max_image_pixels=self.max_image_pixels,
            image_formats=self.image_formats,
        )

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    @property
    def dim(self) -> int:
        return self.backbone.embed_dim

    # ---- public API

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """[n, D] L2-normalised text embeddings (e_t)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        chunks = [
            self._text_batch(list(texts[i : i + self.batch_size]))
            for i in range(0, len(texts), self.batch_size)
        ]
        return np.concatenate(chunks)

    def encode_images(
        self, images: Sequence[ImageInput], *, progress: bool = False
    ) -> tuple[np.ndarray, dict[int, str]]:
        """[n, D] L2-normalised image embeddings (e_v) and {row: reason} for unreadable ones."""
        batches = list(
            self.encode_items(
                (ItemInput(image=img) for img in images), progress=progress, total=len(images)
            )
        )
        errors: dict[int, str] = {}
        offset = 0
        for batch in batches:
            errors.update({offset + row: reason for row, reason in batch.errors.items()})
            offset += len(batch)
        vectors = [b.image for b in batches] or [np.zeros((0, self.dim), np.float32)]
        return np.concatenate(vectors), errors

    def encode_items(
        self,
        items: Iterable[ItemInput],
        *,
        batch_size: int | None = None,
        keep_attention: bool = False,
        progress: bool = False,
        total: int | None = None,
    ) -> Iterator[EncodedBatch]:
        """Stream batches; memory stays bounded whatever the input size.

        Images of the next batches are decoded and preprocessed in worker threads while
        the model runs on the current one. An unreadable image drops the image side of
        its item (reported in ``errors``); the item keeps its text.
        """
        size = batch_size or self.batch_size
        bar = tqdm(
            total=total, desc="encode", unit="item", delay=3, disable=not progress, leave=False
        )
        pool = ThreadPoolExecutor(self.workers) if self.workers > 0 else None
        try:
            for chunk, pixels in self._prefetched(items, size, pool):
                yield self._encode_chunk(chunk, pixels, keep_attention)
                bar.update(len(chunk))
        finally:
            bar.close()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    # ---- pipeline stages

    def load_pixels(self, image: ImageInput) -> torch.Tensor:
        """Decode + preprocess one image: [3, H, W]. Raises ImageDecodeError."""
        picture = open_image(
            image,
            max_pixels=self.max_image_pixels,
            draft_size=self.backbone.image_size,
            formats=self.image_formats,
        )
        return self.backbone.preprocess(picture)

    def _prefetched(
        self, items: Iterable[ItemInput], size: int, pool: ThreadPoolExecutor | None
    ) -> Iterator[tuple[list[ItemInput], list[Future[torch.Tensor] | None]]]:
        ahead: deque[tuple[list[ItemInput], list[Future[torch.Tensor] | None]]] = deque()
        iterator = iter(items)
        while chunk := list(itertools.islice(iterator, size)):
            ahead.append((chunk, [self._submit(pool, item.image) for item in chunk]))
            if len(ahead) > 2:  # two batches in flight while one computes
                yield ahead.popleft()
        while ahead:
            yield ahead.popleft()

    def _submit(
        self, pool: ThreadPoolExecutor | None, image: ImageInput | None
    ) -> Future[torch.Tensor] | None:
        if image is None:
            return None
        if pool is not None:
            return pool.submit(self.load_pixels, image)
        done: Future[torch.Tensor] = Future()  # no workers: decode now, same interface
        try:
            done.set_result(self.load_pixels(image))
        except ImageDecodeError as exc:
            done.set_exception(exc)
        return done

    def _encode_chunk(
        self,
        chunk: list[ItemInput],
        pending: list[Future[torch.Tensor] | None],
        keep_attention: bool,
    ) -> EncodedBatch:
        n = len(chunk)
        errors: dict[int, str] = {}
        pixels: list[torch.Tensor] = []
        image_rows: list[int] = []
        for row, job in enumerate(pending):
            if job is None:
                continue
            try:
                pixels.append(job.result())
                image_rows.append(row)
            except ImageDecodeError as exc:
                errors[row] = str(exc)
        texts = [item_text(None, item.text) for item in chunk]
        text_rows = [row for row, text in enumerate(texts) if text]

        backbone, device, dim = self.backbone, self.device, self.dim
        # Token states only feed the fusion; an untrained one (g = 0) is the plain mean.
        run_fusion = keep_attention or not self.fusion.is_identity
        with inference(device):
            e_v = torch.zeros(n, dim, device=device)
            has_image = torch.zeros(n, dtype=torch.bool, device=device)
            e_t = torch.zeros(n, dim, device=device)
            token_mask = torch.zeros(
                n, int(backbone.model.context_length), dtype=torch.bool, device=device
            )
            token_ids = torch.zeros(n, int(backbone.model.context_length), dtype=torch.long)
            out_v = out_t = None
            if image_rows:
                out_v = image_tower(
                    backbone.model, torch.stack(pixels).to(device, non_blocking=True)
                )
                rows_v = torch.tensor(image_rows, device=device)
                e_v[rows_v], has_image[rows_v] = out_v.embeds, True
            if text_rows:
                ids = backbone.tokenizer([texts[row] for row in text_rows])  # type: ignore[misc]
                out_t = text_tower(backbone.model, ids.to(device))
                rows_t = torch.tensor(text_rows, device=device)
                e_t[rows_t], token_mask[rows_t] = out_t.embeds, out_t.token_mask
                token_ids[torch.tensor(text_rows)] = ids

            attention = None
            if run_fusion:
                grid = backbone.model.visual.grid_size
                config = self.fusion.config
                tokens_v = torch.zeros(
                    n, int(grid[0] * grid[1]), config.vision_width, device=device
                )
                states = torch.zeros(n, token_mask.shape[1], config.text_width, device=device)
                if out_v is not None:
                    tokens_v[rows_v] = out_v.patch_tokens.float()
                if out_t is not None:
                    states[rows_t] = out_t.token_states.float()
                attention = self.fusion(e_v, tokens_v, has_image, e_t, states, token_mask)
                fused_vectors = attention.fused
            else:
                fused_vectors = F.normalize(e_v + e_t, dim=-1)  # what the untrained module returns

        batch = EncodedBatch(
            keys=[item.key for item in chunk],
            image=e_v.float().cpu().numpy(),
            text=e_t.float().cpu().numpy(),
            fused=fused_vectors.float().cpu().numpy(),
            has_image=has_image.cpu().numpy(),
            has_text=token_mask.any(dim=1).cpu().numpy(),
            errors=errors,
        )
        if attention is not None and keep_attention:
            batch.visual_weights = attention.visual_weights.float().cpu().numpy()
            batch.text_weights = attention.text_weights.float().cpu().numpy()
            batch.token_ids = token_ids.numpy()
        return batch

    def _text_batch(self, texts: list[str]) -> np.ndarray:
        with inference(self.device):
            ids = self.backbone.tokenizer([t[:TEXT_MAX_CHARS] for t in texts])  # type: ignore[misc]
            out = text_tower(self.backbone.model, ids.to(self.device))
        return out.embeds.float().cpu().numpy()
