"""Sentiment accuracy, calibration and speed on labelled CSVs, one row per set and scorer.

    python bench/sentiment.py \
        --data ../shared/data/twitter_financial_news/valid.csv \
        --data ../shared/data/sentfin/valid.csv --data ../shared/data/finentity/valid.csv \
        --entities ../shared/data/sentfin/entities.csv --entities ../shared/data/finentity/entities.csv
    python bench/sentiment.py --data headlines.csv --score-col sentiment   # graded gold

Every scorer (the one under test, ``finance-rules`` and plain VADER as the baselines) runs
on every set in this one process. Labels are mapped with ``--label-map`` (the tweets' 0/1/2;
word labels pass through). ``--entities FILE`` (columns ``text,entity,label[,split]``; only
``--split``'s rows, ``valid`` by default) measures the sentiment each named entity gets
(``score_per_entity``: the clauses about it, the whole text where they cannot tell).

Progress and the per-set table go to stderr; the last line on stdout is one JSON object:
``sets`` (per set, per scorer: n, accuracy, macro_f1, per-class F1, ECE, ``ece_floor`` (the
ECE a perfectly calibrated scorer with the same confidences would show on that many texts:
sampling noise), items_per_s, and
with ``--score-col`` the cosine and Pearson correlation of ``score`` with the gold), the
``worst`` set of the scorer under test by macro-F1 with its figures, ``entities`` (per file,
per scorer: accuracy, macro_f1) and ``speed_ratio`` = items_per_s / the rules' on all sets.
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
from monitor.sentiment.base import Sentiment, SentimentScorer  # noqa: E402
from monitor.sentiment.metrics import calibration_error, classification_report  # noqa: E402
from monitor.sentiment.per_ticker import score_per_entity  # noqa: E402
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


def read_entities(path: Path, split: str) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """Texts with their entities and labels, in file order (rows of ``split`` only)."""
    by_text: dict[str, tuple[list[str], list[str]]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if split and row.get("split", split) != split:
                continue
            names, labels = by_text.setdefault(row["text"], ([], []))
            names.append(row["entity"])
            labels.append(row["label"].lower())
    texts = list(by_text)
    return texts, [by_text[t][0] for t in texts], [by_text[t][1] for t in texts]


def set_name(path: Path) -> str:
    """``sentfin/valid.csv`` → ``sentfin``: the folder names the domain when the file does not."""
    generic = ("train", "valid", "test", "dev", "entities")
    return path.parent.name if path.stem in generic else path.stem


def run(
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
    confidence = [s.confidence for s in results]
    report["ece"] = calibration_error(
        confidence, [p == t for p, t in zip(predicted, labels, strict=True)]
    )["ece"]
    report["ece_floor"] = ece_floor(confidence)
    if gold is not None:
        ours = np.array([s.score for s in results])
        truth = np.array(gold)
        report["cosine"] = round(
            float(ours @ truth / (np.linalg.norm(ours) * np.linalg.norm(truth) + 1e-12)), 4
        )
        report["pearson"] = round(float(np.corrcoef(ours, truth)[0, 1]), 4)
    report["n"] = len(texts)
    report["seconds"] = elapsed
    report["items_per_s"] = round(len(texts) / elapsed, 1)
    return report


def ece_floor(confidence: list[float], draws: int = 200) -> float:
    """The ECE a perfectly calibrated scorer with these confidences gets on this many texts
    (each right with probability = its confidence): the sampling noise under a set's ECE.
    On a set of a hundred or so texts it is several points, not zero."""
    rng = np.random.default_rng(0)
    c = np.array(confidence)
    return round(
        float(
            np.mean(
                [
                    calibration_error(c.tolist(), (rng.random(len(c)) < c).tolist())["ece"]  # type: ignore[arg-type]
                    for _ in range(draws)
                ]
            )
        ),
        4,
    )


def run_entities(
    scorer: SentimentScorer, texts: list[str], names: list[list[str]], labels: list[list[str]]
) -> dict[str, object]:
    overall = scorer.score(texts)
    per = score_per_entity(texts, names, overall, scorer)
    truth = [label for row in labels for label in row]
    predicted = [per[i][name].label for i, row in enumerate(names) for name in row]
    report = classification_report(truth, predicted)
    return {"n": len(truth), "accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--entities", type=Path, action="append", default=[])
    parser.add_argument("--split", default="valid", help="entities: rows of this split only")
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--label-col", default="label")
    parser.add_argument("--label-map", default="0=negative,1=positive,2=neutral")
    parser.add_argument("--score-col", default=None, help="graded gold score in [-1, 1]")
    parser.add_argument("--scorer", default="finance")
    parser.add_argument("--model", type=Path, default=None, help="a model folder for --scorer")
    args = parser.parse_args()
    label_map = dict(pair.split("=", 1) for pair in args.label_map.split(",") if pair)
    scorers: dict[str, SentimentScorer] = {
        args.scorer: make_scorer(args.scorer, model=args.model, cache_dir=default_cache_dir()),
        "finance-rules": make_scorer("finance-rules"),
        "vader": make_scorer("vader"),
    }
    sets: dict[str, dict[str, dict[str, object]]] = {}
    for path in args.data:
        texts, labels, gold = read_rows(
            path, args.text_col, args.label_col, label_map, args.score_col
        )
        name = set_name(path)
        print(f"{name}: {len(texts)} rows from {path}", file=sys.stderr)
        sets[name] = {s: run(scorer.score, texts, labels, gold) for s, scorer in scorers.items()}
    entities: dict[str, dict[str, dict[str, object]]] = {}
    for path in args.entities:
        texts, names, labels = read_entities(path, args.split)
        entities[set_name(path)] = {
            s: run_entities(scorer, texts, names, labels) for s, scorer in scorers.items()
        }

    def rate(scorer: str) -> float:
        n = sum(int(r[scorer]["n"]) for r in sets.values())  # type: ignore[call-overload]
        seconds = sum(float(r[scorer].pop("seconds")) for r in sets.values())  # type: ignore[arg-type]
        return n / seconds

    print_table(sets, entities, list(scorers))
    speed = {s: rate(s) for s in scorers}
    worst = min(sets, key=lambda name: float(sets[name][args.scorer]["macro_f1"]))  # type: ignore[arg-type]
    result = {
        "scorer": args.scorer,
        "sets": sets,
        "worst": {"set": worst, **sets[worst][args.scorer]},
        "entities": entities,
        "items_per_s": round(speed[args.scorer], 1),
        "speed_ratio": round(speed[args.scorer] / speed["finance-rules"], 3),
    }
    print(json.dumps(result))


def print_table(
    sets: dict[str, dict[str, dict[str, object]]],
    entities: dict[str, dict[str, dict[str, object]]],
    scorers: list[str],
) -> None:
    print(
        f"{'set':<24} {'scorer':<14} {'n':>6} {'acc':>6} {'F1':>6} {'ECE':>6} {'floor':>6}",
        file=sys.stderr,
    )
    rows = [(name, r) for name, by in sets.items() for r in [by[s] for s in scorers]]
    rows += [
        (f"{name} (entities)", r) for name, by in entities.items() for r in [by[s] for s in scorers]
    ]
    for (name, r), s in zip(rows, scorers * (len(sets) + len(entities)), strict=True):
        print(
            f"{name:<24} {s:<14} {r['n']:>6} {r['accuracy']:>6} {r['macro_f1']:>6} "
            f"{r.get('ece', ''):>6} {r.get('ece_floor', ''):>6}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
