"""Single-library sentiment backends: plain VADER (the baseline) and a Hugging Face classifier."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.sentiment.base import Label, Sentiment
from simmim.errors import ConfigError


class VaderSentiment:
    """General-purpose VADER with its usual ±0.05 cut-offs; the baseline the others beat."""

    name = "vader"
    version = "1"

    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        out = []
        for text in texts:
            compound = self._vader.polarity_scores(text)["compound"]
            label: Label = (
                "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
            )
            out.append(Sentiment(label, compound, 0.5 + abs(compound) / 2))
        return out


class TransformerSentiment:
    """A sequence classifier such as FinBERT, from a local folder or the HF cache (offline)."""

    name = "transformers"

    def __init__(self, model: Path | str, *, batch_size: int = 32) -> None:
        try:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as exc:
            raise ConfigError(
                "the transformers sentiment backend needs the transformers package",
                hint="pip install transformers, or set SIMMIM_MONITOR__SENTIMENT=finance-rules",
            ) from exc
        try:
            self._tokenizer: Any = AutoTokenizer.from_pretrained(str(model))
            self._model: Any = AutoModelForSequenceClassification.from_pretrained(str(model))
        except OSError as exc:
            raise ConfigError(
                f"cannot load the sentiment model {model}: {exc}",
                hint="point SIMMIM_MONITOR__SENTIMENT_MODEL at a local folder with the "
                "model's config, weights and tokenizer (e.g. a FinBERT download)",
            ) from exc
        self._model.eval()
        id2label = {int(k): str(v).lower() for k, v in self._model.config.id2label.items()}
        self._columns = {
            label: next((i for i, name in id2label.items() if name.startswith(label[:3])), None)
            for label in ("negative", "neutral", "positive")
        }
        if self._columns["negative"] is None or self._columns["positive"] is None:
            raise ConfigError(
                f"sentiment model {model} has labels {sorted(id2label.values())}",
                hint="use a model whose labels are negative / neutral / positive",
            )
        self.version = Path(str(model)).name or str(model)
        self.batch_size = batch_size

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        import torch

        out: list[Sentiment] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            batch = self._tokenizer(
                chunk, padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            with torch.inference_mode():
                probs = self._model(**batch).logits.softmax(-1).tolist()
            for row in probs:
                p = {k: (row[i] if i is not None else 0.0) for k, i in self._columns.items()}
                label: Label = max(p, key=p.__getitem__)  # type: ignore[arg-type]
                out.append(Sentiment(label, p["positive"] - p["negative"], p[label]))
        return out
