"""Encoding throughput: our input pipeline and encoder against the loops users write, same process.

Usage: python bench/encode.py [--model ViT-B-32] [--device auto] [-n 256] [--batch-size 64]
                              [--workers 2] [--quick]

On 500x375 photo-like JPEGs ("originals") and their thumbnails (short side
SIMMIM_THUMBNAIL_SIZE, 224 by default), it measures:

- decode only (read + JPEG decode, one thread) and preprocess only (resize, crop and
  normalise of decoded pictures, one thread), ours and open_clip's transform;
- the input pipeline alone (decode + preprocess to the model's input, batched): ours
  (``Encoder.pixel_batches``, threads, uint8, normalised on the device) with 1 and N
  workers, the naive loop (PIL + open_clip preprocess, one thread) and a clip-retrieval
  style loop (a torch DataLoader with N worker processes and float tensors);
- the model alone on ready tensors, end to end (``Encoder.encode_images``) and the naive
  loop end to end; and texts/s.

Ratios are against peers run in the same process. Weights are random (speed does not
depend on their values). Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from encoder import ItemInput, load_encoder
from encoder.device import inference
from encoder.pixels import fit_uint8
from encoder.towers import image_tower
from simmim.images import open_image
from simmim.settings import Settings
from simmim.thumbnails import jpeg_bytes, thumbnail_of


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_jpegs(folder: Path, n: int) -> list[Path]:
    """Photo-like 500x375 JPEGs: gradients, shapes and noise, so they compress like photos."""
    rng = np.random.default_rng(0)
    paths = []
    yy, xx = np.mgrid[0:375, 0:500]
    for i in range(n):
        base = np.stack(
            [
                (xx * rng.uniform(0.2, 0.5) + yy * rng.uniform(0, 0.3) + rng.uniform(0, 255)) % 256
                for _ in range(3)
            ],
            -1,
        )
        noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        image = Image.fromarray(noisy)
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = int(rng.integers(0, 450)), int(rng.integers(0, 330))
            draw.ellipse(
                (x, y, x + int(rng.integers(10, 120)), y + int(rng.integers(10, 120))),
                fill=tuple(int(c) for c in rng.integers(0, 255, 3)),
            )
        path = folder / f"{i:05d}.jpg"
        image.save(path, quality=88)
        paths.append(path)
    return paths


def make_thumbnails(paths: list[Path], folder: Path, size: int) -> list[Path]:
    out = []
    for path in paths:
        target = folder / f"{path.stem}.t{size}.jpg"
        with Image.open(path) as picture:
            target.write_bytes(jpeg_bytes(thumbnail_of(picture.convert("RGB"), size)))
        out.append(target)
    return out


def rate(n: int, run: Callable[[], object], device: torch.device) -> float:
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


class _Files(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """clip-retrieval's reader shape: a file per item, open_clip's transform, float out."""

    def __init__(self, paths: list[Path], preprocess: Callable[[Image.Image], torch.Tensor]):
        self.paths, self.preprocess = paths, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.preprocess(Image.open(self.paths[i]).convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("-n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--thumbnail-size", type=int, default=Settings().thumbnail_size)
    parser.add_argument("--quick", action="store_true", help="skip the end-to-end passes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    def encoder_with(workers: int):  # type: ignore[no-untyped-def]
        settings = Settings(
            thumbnail_size=args.thumbnail_size,
            encoder={
                "model": args.model,
                "pretrained": "none",
                "device": args.device,
                "batch_size": args.batch_size,
                "workers": workers,
            },
        )  # type: ignore[arg-type]
        return load_encoder(settings)

    encoder = encoder_with(args.workers)
    device = encoder.device
    preprocess = encoder.backbone.preprocess
    spec = encoder.pixel_spec
    assert spec is not None, "this model's preprocessing is not one the fast stage replays"
    n, bs = args.n, args.batch_size
    result: dict[str, object] = {
        "model": args.model,
        "device": str(device),
        "gpu_decode": encoder.gpu_decode,
        "n": n,
        "batch_size": bs,
        "workers": args.workers,
    }

    with tempfile.TemporaryDirectory() as folder:
        log(f"writing {n} JPEGs (500x375) and their {args.thumbnail_size} px thumbnails")
        originals = make_jpegs(Path(folder), n)
        thumbs = make_thumbnails(originals, Path(folder), args.thumbnail_size)
        texts = [
            f"Company {i % 50} shares {'rise' if i % 2 else 'fall'} after quarterly results beat forecasts"
            for i in range(n)
        ]
        kinds = {"originals": originals, "thumbnails": thumbs}

        def ours_input(paths: list[Path], enc=encoder) -> None:  # type: ignore[no-untyped-def]
            for _ in enc.pixel_batches([ItemInput(image=p) for p in paths]):
                pass

        def naive_input(paths: list[Path]) -> None:
            for i in range(0, len(paths), bs):
                torch.stack(
                    [preprocess(Image.open(p).convert("RGB")) for p in paths[i : i + bs]]
                ).to(device)

        def peer_input(paths: list[Path]) -> None:
            loader = torch.utils.data.DataLoader(
                _Files(paths, preprocess), batch_size=bs, num_workers=args.workers
            )
            for batch in loader:
                batch.to(device)

        log("warm-up")
        ours_input(originals[:16])
        naive_input(originals[:16])
        encoder.encode_texts(texts[:bs])

        one_worker = encoder_with(1)
        pictures = [Image.open(p).convert("RGB") for p in originals[: min(n, 64)]]
        for kind, paths in kinds.items():
            log(f"{kind}: decode only, preprocess only")
            result[f"decode_only_{kind}"] = round(
                rate(
                    n,
                    lambda paths=paths: [
                        open_image(p.read_bytes(), max_pixels=10**8, draft_size=spec.size)
                        for p in paths
                    ],
                    device,
                ),
                1,
            )
        result["preprocess_only"] = round(
            rate(len(pictures), lambda: [fit_uint8(p, spec) for p in pictures], device), 1
        )
        result["preprocess_only_open_clip"] = round(
            rate(len(pictures), lambda: [preprocess(p) for p in pictures], device), 1
        )
        for kind, paths in kinds.items():
            log(f"{kind}: input pipeline (ours with 1 and {args.workers} workers, naive, peer)")
            ours = rate(n, lambda paths=paths: ours_input(paths), device)
            result[f"input_ours_{kind}"] = round(ours, 1)
            result[f"input_ours_1_worker_{kind}"] = round(
                rate(n, lambda paths=paths: ours_input(paths, one_worker), device), 1
            )
            result[f"input_naive_{kind}"] = round(
                rate(n, lambda paths=paths: naive_input(paths), device), 1
            )
            result[f"input_peer_{kind}"] = round(
                rate(n, lambda paths=paths: peer_input(paths), device), 1
            )
        naive_originals = float(result["input_naive_originals"])  # type: ignore[arg-type]
        result["input_speedup_thumbnails"] = round(
            float(result["input_ours_thumbnails"]) / naive_originals,
            3,  # type: ignore[arg-type]
        )
        result["input_speedup_originals"] = round(
            float(result["input_ours_originals"]) / naive_originals,
            3,  # type: ignore[arg-type]
        )
        result["input_speedup_same_thumbnails"] = round(
            float(result["input_ours_thumbnails"]) / float(result["input_naive_thumbnails"]),
            3,  # type: ignore[arg-type]
        )
        result["input_over_peer"] = round(
            float(result["input_ours_originals"]) / float(result["input_peer_originals"]),
            3,  # type: ignore[arg-type]
        )
        result["thread_scaling"] = round(
            float(result["input_ours_originals"]) / float(result["input_ours_1_worker_originals"]),
            3,  # type: ignore[arg-type]
        )

        log("model only (the encoder's own model on ready tensors)")
        ready = torch.stack([preprocess(p) for p in pictures]).to(device)
        reps = max(1, n // len(pictures))

        def model_only() -> None:
            with inference(device):
                for _ in range(reps):
                    for i in range(0, len(ready), bs):
                        image_tower(encoder.backbone.model, ready[i : i + bs])

        model_only()  # warm
        model_ips = rate(reps * len(ready), model_only, device)
        result["model_only"] = round(model_ips, 2)
        if not args.quick:
            for kind, paths in kinds.items():
                log(f"{kind}: end to end")
                e2e = rate(n, lambda paths=paths: encoder.encode_images(paths), device)
                result[f"end_to_end_{kind}"] = round(e2e, 2)
            result["end_to_end_over_model"] = round(
                float(result["end_to_end_thumbnails"]) / model_ips, 3
            )  # type: ignore[arg-type]
            result["end_to_end_over_model_originals"] = round(
                float(result["end_to_end_originals"]) / model_ips,
                3,  # type: ignore[arg-type]
            )
        result["texts_per_s"] = round(rate(n, lambda: encoder.encode_texts(texts), device), 2)

        def full_context() -> None:  # the same model, every text padded to the context
            with inference(device):
                for i in range(0, n, bs):
                    ids = encoder.backbone.tokenizer(texts[i : i + bs]).to(device)  # type: ignore[misc]
                    encoder.backbone.model.encode_text(ids)

        result["texts_full_context_per_s"] = round(rate(n, full_context, device), 2)
        result["texts_speedup"] = round(
            float(result["texts_per_s"]) / float(result["texts_full_context_per_s"]),
            3,  # type: ignore[arg-type]
        )
        result["stages"] = encoder.timings.as_dict()
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    for key, value in result.items():
        if key != "stages":
            log(f"  {key}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
