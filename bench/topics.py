"""Topic classification: accuracy, macro-F1, per-topic precision/recall and speed.

    python bench/topics.py --data ../shared/data/twitter_financial_news_topic/train.csv --kept-aside
    python bench/topics.py --data my_topics.csv --model <data dir>/models/topics

``--data`` has columns ``text,label`` (label = a topic name of the model). ``--kept-aside``
scores only the fifth of the file that training keeps aside (the same hash of the text), so
the shipped default can be measured on the very file it was trained from without seeing a
training row. Beside the model, in the same run, a **keyword baseline**: each topic's own
name words as keywords ("Fed | Central Banks" → fed, central banks), the topic with most
hits wins (none: the most frequent topic).

Progress goes to stderr; the last line on stdout is one JSON object with ``accuracy``,
``macro_f1``, ``texts_per_s``, ``ece``, ``topics`` (per-topic precision/recall/F1) and the
baseline's figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from monitor.sentiment.metrics import calibration_error  # noqa: E402
from monitor.sentiment.splits import holdout_mask  # noqa: E402
from monitor.topic_model import TopicClassifier  # noqa: E402
from monitor.train.topic_training import topic_report  # noqa: E402
from simmim.settings import default_cache_dir  # noqa: E402


def keyword_baseline(names: list[str], texts: list[str], fallback: str) -> list[str]:
    patterns = {
        name: re.compile(
            r"\b(?:"
            + "|".join(re.escape(w.strip().lower()) for w in re.split(r"[|/&]", name) if w.strip())
            + r")\b"
        )
        for name in names
    }
    out = []
    for text in texts:
        low = text.lower()
        hits = {name: len(p.findall(low)) for name, p in patterns.items()}
        best = max(hits, key=lambda n: hits[n])
        out.append(best if hits[best] else fallback)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--kept-aside", action="store_true", help="only the held-out fifth")
    args = parser.parse_args()
    with args.data.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if args.kept_aside:
        mask = holdout_mask([r["text"] for r in rows], 0.2)
        rows = [r for r, keep in zip(rows, mask, strict=True) if keep]
    texts, truth = [r["text"] for r in rows], [r["label"] for r in rows]
    model = TopicClassifier(args.model, cache_dir=default_cache_dir())
    unknown = sorted(set(truth) - set(model.names))
    if unknown:
        raise SystemExit(f"{args.data}: labels the model does not know: {', '.join(unknown)}")
    print(f"{len(texts)} rows, {len(model.names)} topics", file=sys.stderr)
    model.probabilities(texts[:64])  # warm-up
    start = time.perf_counter()
    probs = model.probabilities(texts)
    elapsed = time.perf_counter() - start
    predicted = [model.names[i] for i in probs.argmax(1)]
    report = topic_report(truth, predicted, model.names)
    y = np.array([model.names.index(t) for t in truth])
    report["ece"] = calibration_error(probs.max(1).tolist(), (probs.argmax(1) == y).tolist())["ece"]
    report["texts_per_s"] = round(len(texts) / elapsed, 1)
    frequent = Counter(truth).most_common(1)[0][0]
    start = time.perf_counter()
    base = keyword_baseline(model.names, texts, frequent)
    base_report = topic_report(truth, base, model.names)
    base_report["texts_per_s"] = round(len(texts) / (time.perf_counter() - start), 1)
    for name, r in (("model", report), ("keywords", base_report)):
        print(
            f"{name}: accuracy {r['accuracy']} macro-F1 {r['macro_f1']} {r['texts_per_s']} texts/s",
            file=sys.stderr,
        )
    for topic, figures in report["topics"].items():  # type: ignore[attr-defined]
        print(f"  {topic:<32} {json.dumps(figures)}", file=sys.stderr)
    print(json.dumps({**report, "keyword_baseline": base_report}))


if __name__ == "__main__":
    main()
