"""Which labelled texts are kept aside, and how a new model compares with the shipped one."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from monitor.sentiment.base import SentimentScorer
from monitor.sentiment.metrics import classification_report


def holdout_mask(texts: Sequence[str], fraction: float) -> np.ndarray:
    """True for texts kept aside: a hash of the normalised text, so near-repeats (case,
    punctuation, links) fall on one side and the split is the same whatever the order."""
    keep = int(fraction * 1000)
    return np.array([_bucket(t) < keep for t in texts], bool)


def _bucket(text: str) -> int:
    normal = " ".join(re.sub(r"https?://\S+|[^\w\s]", " ", text.lower()).split())
    return int(hashlib.sha256(normal.encode()).hexdigest()[:8], 16) % 1000


def compare_per_domain(
    new: SentimentScorer,
    shipped: SentimentScorer,
    texts: Sequence[str],
    labels: Sequence[str],
    domains: Sequence[str],
) -> list[dict[str, object]]:
    """Macro-F1 of both scorers on the same held-out texts, per domain and over all."""
    new_labels = [s.label for s in new.score(texts)]
    old_labels = [s.label for s in shipped.score(texts)]
    groups = {"all": list(range(len(texts)))}
    if len(set(domains)) > 1:
        for i, domain in enumerate(domains):
            groups.setdefault(domain, []).append(i)
    rows = []
    for name, idx in groups.items():
        truth = [labels[i] for i in idx]
        new_f1 = float(classification_report(truth, [new_labels[i] for i in idx])["macro_f1"])  # type: ignore[arg-type]
        old_f1 = float(classification_report(truth, [old_labels[i] for i in idx])["macro_f1"])  # type: ignore[arg-type]
        rows.append(
            {
                "domain": name,
                "n": len(idx),
                "new": new_f1,
                "shipped": old_f1,
                "better": new_f1 > old_f1,
            }
        )
    return rows
