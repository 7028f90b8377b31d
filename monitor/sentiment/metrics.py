"""Accuracy and F1 for three-class sentiment, shared by the benchmark and train-sentiment."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.sentiment.base import LABELS


def classification_report(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, object]:
    f1: dict[str, float] = {}
    for label in LABELS:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted, strict=True))
        f1[label] = round(2 * tp / (2 * tp + fp + fn), 4) if tp else 0.0
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    return {
        "accuracy": round(correct / max(1, len(truth)), 4),
        "macro_f1": round(sum(f1.values()) / len(LABELS), 4),
        "f1": f1,
        "predicted_share": {
            label: round(sum(p == label for p in predicted) / max(1, len(predicted)), 3)
            for label in LABELS
        },
    }
