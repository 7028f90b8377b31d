"""Exact search on the device (``indexer.index.device_search``): single-query and batched
queries/s over N x D unit vectors made on the device, with recall against float32 exact.

Usage: python bench/gpu_search.py [-n 10000000] [--dim 512] [--queries 1000] [-k 10]
                                  [--device auto]

Without CUDA it runs on the CPU at a size that fits (default -n 200000 there), to show it
works; the figures that matter are the GPU's. Progress goes to stderr; the last stdout
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.index.device_search import DeviceExact


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=None)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--single", type=int, default=300, help="single-query searches timed")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    n = args.n or (10_000_000 if device.type == "cuda" else 200_000)
    log(f"{n} x {args.dim} unit vectors on {device}")
    generator = torch.Generator(device=device).manual_seed(0)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    store = DeviceExact(np.zeros(0, np.int64), np.zeros((0, args.dim), np.float32), device)
    chunks = []
    for start in range(0, n, 1_000_000):  # made in pieces: no float32 copy of all of it
        rows = min(1_000_000, n - start)
        x = torch.randn(rows, args.dim, device=device, generator=generator)
        chunks.append(torch.nn.functional.normalize(x, dim=1).to(dtype))
    store.matrix = torch.cat(chunks)
    del chunks
    store.ids = torch.arange(n, device=device, dtype=torch.int64)
    queries = torch.nn.functional.normalize(
        torch.randn(args.queries, args.dim, device=device, generator=generator), dim=1
    )
    q = queries.cpu().numpy()
    store.search(q[:8], args.k)  # warm-up
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    sync()
    start = time.perf_counter()
    for i in range(args.single):
        store.search(q[i % len(q) : i % len(q) + 1], args.k)
    sync()
    single = args.single / (time.perf_counter() - start)
    log(f"  single query: {single:.0f} QPS")
    start = time.perf_counter()
    _, found = store.search(q, args.k)
    sync()
    batched = len(q) / (time.perf_counter() - start)
    log(f"  batched ({len(q)}): {batched:.0f} QPS")

    sample = min(100, len(q))  # the truth in float32, a block of rows at a time
    best = torch.full((sample, args.k), -float("inf"), device=device)
    best_ids = torch.zeros((sample, args.k), dtype=torch.int64, device=device)
    for start in range(0, n, 1_000_000):
        block = store.matrix[start : start + 1_000_000].float()
        scores = queries[:sample] @ block.T
        top = torch.topk(scores, args.k, dim=1)
        merged = torch.cat([best, top.values], 1)
        merged_ids = torch.cat([best_ids, top.indices + start], 1)
        keep = torch.topk(merged, args.k, dim=1)
        best, best_ids = keep.values, torch.gather(merged_ids, 1, keep.indices)
    truth = best_ids.cpu().numpy()
    hits = sum(len(set(found[i]) & set(truth[i])) for i in range(sample))
    recall = hits / (sample * args.k)
    log(f"  recall@{args.k} against float32 exact: {recall:.4f}")
    print(
        json.dumps(
            {
                "device": str(device),
                "n": n,
                "dim": args.dim,
                "k": args.k,
                "single_query_qps": round(single, 1),
                "batched_qps": round(batched, 1),
                "batch": len(q),
                "recall_at_k": round(recall, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
