"""Batched encoding into the three spaces, with the input pipeline overlapped with the model.

Images of the next batches are read, decoded and resized (``encoder.pixels``; on CUDA,
JPEGs are decoded by nvJPEG, ``encoder.gpu_decode``) and texts tokenised in worker threads
while the model runs on the current batch; per-stage seconds go into ``StageTimes``.
"""

from __future__ import annotations

import itertools
import logging
import time
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
from encoder.gpu_decode import decode_on_device, device_decodable, gpu_decode_available
from encoder.loading import Backbone, load_fusion_for
from encoder.pixels import Normaliser, PixelSpec, collate, fit_tensor, fit_uint8, read_bytes
from encoder.stage_times import StageTimes, timed
from encoder.towers import image_tower, text_tower
from simmim.image_formats import SAFE_FORMATS
from simmim.images import ImageDecodeError, ImageInput, open_image
from simmim.models import TEXT_MAX_CHARS, item_text
from simmim.thumbnails import make_copy, write_thumbnail

log = logging.getLogger(__name__)


@dataclass
class ItemInput:
    """One thing to encode: text, an image, or both. ``key`` comes back unchanged.

    ``thumbnail``: where the image's small copy lives; read instead of ``image`` when it
    exists, made from the decoded original (once) when it does not."""

    text: str | None = None
    image: ImageInput | None = None
    key: Any = None
    thumbnail: Path | None = None


SORT_WINDOW = 8  # batches of texts sorted by length together (encode_texts)
Prepared = torch.Tensor | bytes  # a worker's output: pixels, or JPEG bytes for the GPU


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
        thumbnail_size: int = 0,
        gpu_decode: bool = True,
    ) -> None:
        self.backbone = backbone
        self.fusion = fusion
        self.fingerprint = fingerprint
        self.batch_size = batch_size
        self.workers = workers
        self.max_image_pixels = max_image_pixels
        self.image_formats = image_formats
        self.thumbnail_size = thumbnail_size
        self.gpu_decode = gpu_decode and gpu_decode_available(backbone.device)
        self.pixel_spec = PixelSpec.of(backbone.model)
        self._normalise = (
            Normaliser(self.pixel_spec, backbone.device) if self.pixel_spec is not None else None
        )
        self.timings = StageTimes()  # every batch since the encoder was built

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
            thumbnail_size=self.thumbnail_size,
            gpu_decode=self.gpu_decode,
        )

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    @property
    def dim(self) -> int:
        return self.backbone.embed_dim

    # ---- public API

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """[n, D] L2-normalised text embeddings (e_t), in the order given.

        Within each window of SORT_WINDOW batches the texts are encoded shortest first:
        the tower runs only as far as a batch's longest text (``text_tower``), so batches
        of like lengths waste the least."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = np.zeros((len(texts), self.dim), np.float32)
        window = self.batch_size * SORT_WINDOW
        for start in range(0, len(texts), window):
            rows = sorted(
                range(start, min(start + window, len(texts))), key=lambda i: len(texts[i])
            )
            for i in range(0, len(rows), self.batch_size):
                part = rows[i : i + self.batch_size]
                out[part] = self._text_batch([texts[r] for r in part])
        return out

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
        timings: StageTimes | None = None,
    ) -> Iterator[EncodedBatch]:
        """Stream batches; memory stays bounded whatever the input size.

        Two batches are read, decoded, resized and tokenised in worker threads while the
        model runs on the current one. An unreadable image drops the image side of its
        item (reported in ``errors``); the item keeps its text. Stage seconds go into
        ``timings`` (and always into ``self.timings``).
        """
        size = batch_size or self.batch_size
        stages = [self.timings] + ([timings] if timings is not None else [])
        bar = tqdm(
            total=total, desc="encode", unit="item", delay=3, disable=not progress, leave=False
        )
        pool = ThreadPoolExecutor(self.workers) if self.workers > 0 else None
        try:
            for chunk, pixels, tokens in self._prefetched(items, size, pool, stages):
                yield self._encode_chunk(chunk, pixels, tokens, keep_attention, stages)
                bar.update(len(chunk))
        finally:
            bar.close()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def pixel_batches(
        self,
        items: Iterable[ItemInput],
        *,
        batch_size: int | None = None,
        timings: StageTimes | None = None,
    ) -> Iterator[tuple[torch.Tensor | None, list[int], dict[int, str]]]:
        """The input stage alone, as ``encode_items`` runs it: per batch, the model's input
        on the device, the rows it holds and why the other images were dropped."""
        size = batch_size or self.batch_size
        stages = [self.timings] + ([timings] if timings is not None else [])
        pool = ThreadPoolExecutor(self.workers) if self.workers > 0 else None
        try:
            for _, pending, _ in self._prefetched(items, size, pool, stages):
                yield self._pixels(pending, stages)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    # ---- pipeline stages

    def load_pixels(self, image: ImageInput) -> torch.Tensor:
        """Decode + open_clip's own preprocess of one image: [3, H, W] float, on the CPU.
        The reference path (training, explanations); encoding takes the faster stage.
        Raises ImageDecodeError."""
        picture = open_image(
            image,
            max_pixels=self.max_image_pixels,
            draft_size=self.backbone.image_size,
            formats=self.image_formats,
        )
        return self.backbone.preprocess(picture)

    def prepare_image(self, item: ItemInput, stages: Sequence[StageTimes] = ()) -> Prepared:
        """One image through read → decode → resize: [3, S, S] uint8 (float, normalised,
        for a preprocessing the stage does not replay), or the JPEG's bytes when the GPU
        will decode it. Raises ImageDecodeError."""
        assert item.image is not None
        spec, copy = self.pixel_spec, item.thumbnail
        if copy is None or spec is None or self.thumbnail_size < spec.size:
            copy = None  # no copy, or one too small for this model: the original
        source: ImageInput = copy if copy is not None and copy.is_file() else item.image
        make = copy if copy is not None and source is item.image else None
        with timed(stages, "read"):
            data = read_bytes(source)
        if (
            self.gpu_decode
            and spec is not None  # the GPU path resizes by the spec
            and make is None
            and isinstance(data, bytes)
            and device_decodable(data, max_pixels=self.max_image_pixels, formats=self.image_formats)
        ):
            return data
        return self._decode_and_fit(data, stages, make_copy_at=make)

    def _decode_and_fit(
        self,
        data: bytes | Any,
        stages: Sequence[StageTimes],
        *,
        make_copy_at: Path | None = None,
    ) -> torch.Tensor:
        """Decode (at the DCT scale that covers the model's input) and resize; with
        ``make_copy_at``, decode in full, store the copy an older data dir lacks there, and
        go on from the copy (resized once, for both)."""
        with timed(stages, "decode"):
            picture = open_image(
                data,
                max_pixels=self.max_image_pixels,
                draft_size=None if make_copy_at is not None else self.backbone.image_size,
                formats=self.image_formats,
            )
        with timed(stages, "resize"):
            if make_copy_at is not None:
                copy = make_copy(picture, self.thumbnail_size)
                if copy is not None:
                    picture = copy[0]
                    try:
                        write_thumbnail(make_copy_at, copy[1])
                    except OSError as exc:  # a read-only data dir still encodes
                        log.warning("cannot write the thumbnail %s: %s", make_copy_at, exc)
            if self.pixel_spec is None:
                return self.backbone.preprocess(picture)
            return fit_uint8(picture, self.pixel_spec)

    def _prefetched(
        self,
        items: Iterable[ItemInput],
        size: int,
        pool: ThreadPoolExecutor | None,
        stages: Sequence[StageTimes],
    ) -> Iterator[tuple[list[ItemInput], list[Future[Prepared] | None], Future[Any] | None]]:
        ahead: deque[tuple[list[ItemInput], list[Future[Prepared] | None], Future[Any] | None]] = (
            deque()
        )
        iterator = iter(items)
        while chunk := list(itertools.islice(iterator, size)):
            images = [self._submit(pool, item, stages) for item in chunk]
            texts = [item_text(None, item.text) for item in chunk]
            tokens = None
            if any(texts):
                tokens = _run(pool, self._tokenise, [t for t in texts if t])
            ahead.append((chunk, images, tokens))
            if len(ahead) > 2:  # two batches in flight while one computes
                yield ahead.popleft()
        while ahead:
            yield ahead.popleft()

    def _tokenise(self, texts: list[str]) -> torch.Tensor:
        return self.backbone.tokenizer(texts)  # type: ignore[misc]

    def _submit(
        self, pool: ThreadPoolExecutor | None, item: ItemInput, stages: Sequence[StageTimes]
    ) -> Future[Prepared] | None:
        if item.image is None:
            return None
        return _run(pool, self.prepare_image, item, stages)

    def _pixels(
        self, pending: list[Future[Prepared] | None], stages: Sequence[StageTimes]
    ) -> tuple[torch.Tensor | None, list[int], dict[int, str]]:
        """The batch's images as the model's input on the device, the rows they belong
        to, and why the others were dropped."""
        errors: dict[int, str] = {}
        ready: dict[int, torch.Tensor] = {}
        jpegs: dict[int, bytes] = {}
        for row, job in enumerate(pending):
            if job is None:
                continue
            try:
                out = job.result()
            except ImageDecodeError as exc:
                errors[row] = str(exc)
                continue
            if isinstance(out, bytes):
                jpegs[row] = out
            else:
                ready[row] = out
        device = self.device
        if self._normalise is None:  # open_clip's float transform ran in the workers
            rows = sorted(ready)
            with timed(stages, "transfer"):
                batch = torch.stack([ready[r] for r in rows]).to(device) if rows else None
            return batch, rows, errors
        on_device: dict[int, torch.Tensor] = {}
        if jpegs:
            assert self.pixel_spec is not None
            with timed(stages, "decode"):
                decoded = decode_on_device(list(jpegs.values()), device)
            for row, image in zip(list(jpegs), decoded, strict=True):
                if image is not None:
                    on_device[row] = fit_tensor(image, self.pixel_spec)
                    continue
                try:  # nvJPEG refused it: the CPU way, with its reasons
                    ready[row] = self._decode_and_fit(jpegs[row], stages)
                except ImageDecodeError as exc:
                    errors[row] = str(exc)
        rows = sorted([*ready, *on_device])
        if not rows:
            return None, [], errors
        batches: list[torch.Tensor] = []
        if ready:
            with timed(stages, "collate"):
                host = collate([ready[r] for r in sorted(ready)], pin=device.type == "cuda")
            with timed(stages, "transfer"):
                batches.append(self._normalise(host))
        if on_device:
            batches.append(self._normalise(torch.stack([on_device[r] for r in sorted(on_device)])))
        if len(batches) == 1:
            return batches[0], rows, errors
        by_row = dict(zip([*sorted(ready), *sorted(on_device)], torch.cat(batches), strict=True))
        return torch.stack([by_row[r] for r in rows]), rows, errors

    def _encode_chunk(
        self,
        chunk: list[ItemInput],
        pending: list[Future[Prepared] | None],
        tokens: Future[Any] | None,
        keep_attention: bool,
        stages: Sequence[StageTimes],
    ) -> EncodedBatch:
        n = len(chunk)
        texts = [item_text(None, item.text) for item in chunk]
        text_rows = [row for row, text in enumerate(texts) if text]

        backbone, device, dim = self.backbone, self.device, self.dim
        # Token states only feed the fusion; an untrained one (g = 0) is the plain mean.
        run_fusion = keep_attention or not self.fusion.is_identity
        with inference(device):
            pixels, image_rows, errors = self._pixels(pending, stages)
            started = time.perf_counter()
            e_v = torch.zeros(n, dim, device=device)
            has_image = torch.zeros(n, dtype=torch.bool, device=device)
            e_t = torch.zeros(n, dim, device=device)
            token_mask = torch.zeros(
                n, int(backbone.model.context_length), dtype=torch.bool, device=device
            )
            token_ids = torch.zeros(n, int(backbone.model.context_length), dtype=torch.long)
            out_v = out_t = None
            if pixels is not None:
                out_v = image_tower(backbone.model, pixels)
                rows_v = torch.tensor(image_rows, device=device)
                e_v[rows_v], has_image[rows_v] = out_v.embeds, True
            if text_rows:
                assert tokens is not None
                ids = tokens.result()
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
            for timing in stages:
                timing.add("model", time.perf_counter() - started)
                timing.count(images=len(image_rows), texts=len(text_rows))
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


def _run(pool: ThreadPoolExecutor | None, function: Any, *args: Any) -> Future[Any]:
    """On the pool, or now when there are no workers: the same interface either way."""
    if pool is not None:
        return pool.submit(function, *args)
    done: Future[Any] = Future()
    try:
        done.set_result(function(*args))
    except Exception as exc:
        done.set_exception(exc)
    return done
