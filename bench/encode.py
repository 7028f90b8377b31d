"""Encoding throughput: our encoder against the plain loop a user would write, same process.

Usage: python bench/encode.py [--model ViT-B-32] [--device auto] [-n 256] [--batch-size 64]

Weights are random (speed does not depend on their values). Progress goes to stderr; the
last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from encoder import load_encoder
from encoder.device import autocast_dtype
from simmim.settings import Settings


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


def baseline_images(
    model: torch.nn.Module, preprocess, paths: list[Path], batch_size: int, device: torch.device
) -> float:  # type: ignore[no-untyped-def]
    """The naive loop: open, preprocess, batch, model; nothing overlapped."""
    dtype = autocast_dtype(device)
    start = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        batch = torch.stack(
            [preprocess(Image.open(p).convert("RGB")) for p in paths[i : i + batch_size]]
        ).to(device)
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            model.encode_image(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(paths) / (time.perf_counter() - start)


def forward_only(
    model: torch.nn.Module, preprocess, paths: list[Path], batch_size: int, device: torch.device
) -> float:  # type: ignore[no-untyped-def]
    """The ceiling: the model on already-preprocessed tensors."""
    tensors = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths]).to(device)
    dtype = autocast_dtype(device)
    start = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=dtype, enabled=dtype is not None),
        ):
            model.encode_image(tensors[i : i + batch_size])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("-n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--forward", action="store_true", help="also measure model-only throughput")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    settings = Settings(
        encoder={
            "model": args.model,
            "pretrained": "none",
            "device": args.device,
            "batch_size": args.batch_size,
            "workers": args.workers,
        }
    )  # type: ignore[arg-type]
    encoder = load_encoder(settings)
    device = encoder.device
    torch.manual_seed(0)
    plain, _, preprocess = open_clip.create_model_and_transforms(
        args.model, pretrained=None, device=device
    )
    plain.eval()

    with tempfile.TemporaryDirectory() as folder:
        log(f"writing {args.n} JPEGs (500x375)")
        paths = make_jpegs(Path(folder), args.n)
        texts = [
            f"Company {i % 50} shares {'rise' if i % 2 else 'fall'} after quarterly results beat forecasts"
            for i in range(args.n)
        ]

        log("warm-up")
        encoder.encode_images(paths[: min(8, args.n)])
        encoder.encode_texts(texts[: min(args.batch_size, args.n)])
        baseline_images(plain, preprocess, paths[: min(8, args.n)], args.batch_size, device)

        log("baseline: plain loop")
        baseline_ips = baseline_images(plain, preprocess, paths, args.batch_size, device)
        log(f"  {baseline_ips:.1f} images/s")
        log("ours: encoder.encode_images")
        start = time.perf_counter()
        _, errors = encoder.encode_images(paths)
        ours_ips = args.n / (time.perf_counter() - start)
        assert not errors, errors
        log(f"  {ours_ips:.1f} images/s")
        start = time.perf_counter()
        encoder.encode_texts(texts)
        texts_ps = args.n / (time.perf_counter() - start)
        result = {
            "model": args.model,
            "device": str(device),
            "n": args.n,
            "batch_size": args.batch_size,
            "images_per_s": round(ours_ips, 2),
            "baseline_images_per_s": round(baseline_ips, 2),
            "ratio": round(ours_ips / baseline_ips, 3),
            "texts_per_s": round(texts_ps, 2),
        }
        if args.forward or device.type == "cuda":
            ceiling = forward_only(plain, preprocess, paths, args.batch_size, device)
            result["model_forward_images_per_s"] = round(ceiling, 2)
            result["fraction_of_forward"] = round(ours_ips / ceiling, 3)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
