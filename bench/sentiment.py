"""Sentiment accuracy and speed on a labelled CSV.

    python bench/sentiment.py --data ../shared/data/twitter_financial_news/valid.csv \
        --label-map 0=negative,1=positive,2=neutral [--scorer finance-rules|vader|learned]

Progress goes to stderr; the last line on stdout is one JSON object: n, accuracy, macro_f1,
per-class F1, items_per_s, and the same for plain VADER as the baseline run in this process.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# bench/monitor.py would shadow the `monitor` package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from monitor.sentiment import LABELS, make_scorer  # noqa: E402
from monitor.sentiment.base import Sentiment  # noqa: E402
from monitor.sentiment.metrics import classification_report  # noqa: E402


def read_rows(
    path: Path, text_col: str, label_col: str, label_map: dict[str, str]
) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            label = label_map.get(row[label_col], row[label_col]).lower()
            if label not in LABELS:
                raise SystemExit(f"{path}: unknown label {row[label_col]!r}; pass --label-map")
            texts.append(row[text_col])
            labels.append(label)
    return texts, labels


def run(
    name: str,
    score: Callable[[Sequence[str]], list[Sentiment]],
    texts: list[str],
    labels: list[str],
) -> dict[str, object]:
    start = time.perf_counter()
    predicted = [s.label for s in score(texts)]
    elapsed = time.perf_counter() - start
    report = classification_report(labels, predicted)
    report["items_per_s"] = round(len(texts) / elapsed, 1)
    print(f"{name}: {json.dumps(report)}", file=sys.stderr)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--label-col", default="label")
    parser.add_argument("--label-map", default="0=negative,1=positive,2=neutral")
    parser.add_argument("--scorer", default="finance-rules")
    parser.add_argument("--model", type=Path, default=None, help="learned: model folder")
    args = parser.parse_args()
    label_map = dict(pair.split("=", 1) for pair in args.label_map.split(",") if pair)
    texts, labels = read_rows(args.data, args.text_col, args.label_col, label_map)
    print(f"{len(texts)} rows from {args.data}", file=sys.stderr)

    baseline = run("vader", make_scorer("vader").score, texts, labels)
    result = run(args.scorer, make_scorer(args.scorer, model=args.model).score, texts, labels)
    result = {"n": len(texts), "scorer": args.scorer, **result, "vader_baseline": baseline}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
