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


def calibration_error(
    confidence: Sequence[float], correct: Sequence[bool], *, bins: int = 10
) -> dict[str, object]:
    """Expected calibration error and the reliability table it comes from (equal-width bins)."""
    table = []
    ece = 0.0
    n = max(1, len(confidence))
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [
            (c, ok)
            for c, ok in zip(confidence, correct, strict=True)
            if lo < c <= hi or (b == 0 and c == 0)
        ]
        if not members:
            continue
        mean_conf = sum(c for c, _ in members) / len(members)
        accuracy = sum(ok for _, ok in members) / len(members)
        ece += len(members) / n * abs(mean_conf - accuracy)
        table.append(
            {
                "bin": f"{lo:.1f}-{hi:.1f}",
                "n": len(members),
                "confidence": round(mean_conf, 3),
                "accuracy": round(accuracy, 3),
            }
        )
    return {"ece": round(ece, 4), "reliability": table}
