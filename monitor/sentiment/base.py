"""What every sentiment scorer returns, and the interface the monitor calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Label = Literal["negative", "neutral", "positive"]
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Sentiment:
    label: Label
    score: float  # -1 (most negative) .. 1 (most positive)
    confidence: float  # 0..1, how sure the scorer is of the label


class SentimentScorer(Protocol):
    """Name and version are stored on every score row: changing either means re-scoring."""

    name: str
    version: str

    def score(self, texts: Sequence[str]) -> list[Sentiment]: ...
