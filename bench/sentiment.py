"""Sentiment accuracy and speed on a labelled CSV.

    python bench/sentiment.py --data ../shared/data/twitter_financial_news/valid.csv \
        --label-map 0=negative,1=positive,2=neutral [--scorer finance|finance-rules|vader|learned]
    python bench/sentiment.py --data headlines.csv --score-col sentiment   # graded gold

Progress goes to stderr; the last line on stdout is one JSON object: n, accuracy, macro_f1,
per-class F1, ECE of the confidence, items_per_s, and with ``--score-col`` (gold intensity
in [-1, 1]; labels then come from its sign unless ``--label-col`` is there too) the cosine
and Pearson correlation of ``score`` with it; the same for plain VADER and the rules as the
baselines run in this process, and ``speed_ratio`` = items_per_s / the rules' items_per_s.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

# bench/monitor.py would shadow the `monitor` package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from monitor.sentiment import LABELS, make_scorer  # noqa: E402
from monitor.sentiment.base import Sentiment  # noqa: E402
from monitor.sentiment.metrics import calibration_error, classification_report  # noqa: E402
from simmim.settings import default_cache_dir  # noqa: E402


def read_rows(
    path: Path, text_col: str, label_col: str, label_map: dict[str, str], score_col: str | None
) -> tuple[list[str], list[str], list[float] | None]:
    texts, labels, gold = [], [], []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        has_labels = label_col in (reader.fieldnames or ())
        for row in reader:
            if score_col:
                gold.append(float(row[score_col]))
            if has_labels:
                label = label_map.get(row[label_col], row[label_col]).lower()
            elif score_col:  # graded gold only: its sign is the label
                label = "positive" if gold[-1] > 0 else "negative" if gold[-1] < 0 else "neutral"
            else:
                raise SystemExit(f"{path}: no column {label_col!r}; pass --label-col/--score-col")
            if label not in LABELS:
                raise SystemExit(f"{path}: unknown label {row[label_col]!r}; pass --label-map")
            texts.append(row[text_col])
            labels.append(label)
    return texts, labels, gold if score_col else None


def run(
    name: str,
    score: Callable[[Sequence[str]], list[Sentiment]],
    texts: list[str],
    labels: list[str],
    gold: list[float] | None,
) -> dict[str, object]:
    score(texts[:64])  # warm-up: lazy imports and first-call set-up are not throughput
    start = time.perf_counter()
    results = score(texts)
    elapsed = time.perf_counter() - start
    predicted = [s.label for s in results]
    report = classification_report(labels, predicted)
    report["ece"] = calibration_error(
        [s.confidence for s in results], [p == t for p, t in zip(predicted, labels, strict=True)]
    )["ece"]
    if gold is not None:
        ours = np.array([s.score for s in results])
        truth = np.array(gold)
        report["cosine"] = round(
            float(ours @ truth / (np.linalg.norm(ours) * np.linalg.norm(truth) + 1e-12)), 4
        )
        report["pearson"] = round(float(np.corrcoef(ours, truth)[0, 1]), 4)
    report["items_per_s"] = round(len(texts) / elapsed, 1)
    print(f"{name}: {json.dumps(report)}", file=sys.stderr)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--label-col", default="label")
    parser.add_argument("--label-map", default="0=negative,1=positive,2=neutral")
    parser.add_argument("--score-col", default=None, help="graded gold score in [-1, 1]")
    parser.add_argument("--scorer", default="finance")
    parser.add_argument("--model", type=Path, default=None, help="learned: model folder")
    args = parser.parse_args()
    label_map = dict(pair.split("=", 1) for pair in args.label_map.split(",") if pair)
    texts, labels, gold = read_rows(
        args.data, args.text_col, args.label_col, label_map, args.score_col
    )
    print(f"{len(texts)} rows from {args.data}", file=sys.stderr)

    vader = run("vader", make_scorer("vader").score, texts, labels, gold)
    rules = run("finance-rules", make_scorer("finance-rules").score, texts, labels, gold)
    scorer = make_scorer(args.scorer, model=args.model, cache_dir=default_cache_dir())
    result = run(args.scorer, scorer.score, texts, labels, gold)
    speed = round(float(result["items_per_s"]) / float(rules["items_per_s"]), 3)  # type: ignore[arg-type]
    result = {
        "n": len(texts),
        "scorer": args.scorer,
        **result,
        "speed_ratio": speed,
        "vader_baseline": vader,
        "rules_baseline": rules,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
