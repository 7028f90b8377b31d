"""Retrieval quality on the demo corpus: the CLIP mean, the fusion before and after it
trains itself on the corpus's own pairs.

    python bench/retrieval.py [--data-dir DIR] [--model tiny|pretrained] [--epochs 40]

Builds the demo corpus in DIR (a temporary folder by default) with the real pipeline
(`simmim demo`), then runs the self-training step exactly as the monitor would: train on
the items that are not held out, judge on the held-out ones, and when the candidate wins,
re-index with it and swap (``reindexed``; ``train_s`` includes that). With ``--model pretrained``
and the configured open_clip weights on this machine, the same figures for them.
Progress on stderr; the last stdout line is one JSON object with ``mean_r5``,
``fused_r5_before``, ``fused_r5_after``, ``ratio`` = fused_r5_after / mean_r5, whether the
candidate was accepted, and every direction's figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

# bench/monitor.py would shadow the `monitor` package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from app.demo.run import run_demo  # noqa: E402
from encoder import load_encoder  # noqa: E402
from encoder.train.training import FusionTrainConfig  # noqa: E402
from indexer.fusion_switch import self_train_step  # noqa: E402
from indexer.live_fusion import following_index  # noqa: E402
from simmim.db import make_engine  # noqa: E402
from simmim.settings import load_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--model", default="tiny", choices=("tiny", "pretrained", "auto"))
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    folder = args.data_dir or Path(tempfile.mkdtemp(prefix="simmim-bench-retrieval-")) / "demo"
    started = time.perf_counter()
    result = run_demo(folder, model=args.model, say=lambda m: print(m, file=sys.stderr))
    print(f"demo corpus built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    settings = load_settings(result.config_file)
    engine = make_engine(settings.database_url)
    started = time.perf_counter()
    step = self_train_step(
        settings,
        engine,
        following_index(settings, load_encoder(settings)),
        force=True,
        config=FusionTrainConfig(epochs=args.epochs),
    )
    attempt = step.attempt
    assert attempt is not None  # forced
    took = time.perf_counter() - started
    if attempt.before is None or attempt.after is None:
        raise SystemExit(f"no self-training: {attempt.reason}")
    print(f"self-training: {attempt.reason} ({took:.0f} s)", file=sys.stderr)
    mean_r5 = attempt.before.mean_r5
    line = {
        "model": result.model,
        "train_pairs": attempt.train_pairs,
        "held_out_pairs": attempt.held_out_pairs,
        "mean_r5": round(mean_r5, 4),
        "fused_r5_before": round(attempt.before.fused_r5, 4),
        "fused_r5_after": round(attempt.after.fused_r5, 4),
        "ratio": round(attempt.after.fused_r5 / mean_r5, 3) if mean_r5 else None,
        "accepted": attempt.accepted,
        "reindexed": (attempt.switched or {}).get("reindexed", 0),
        "train_s": round(took, 1),
        "before": attempt.before.directions,
        "after": attempt.after.directions,
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
