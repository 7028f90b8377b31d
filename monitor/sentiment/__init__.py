"""Sentiment scorers behind one interface; ``make_scorer`` picks one by name."""

from __future__ import annotations

from pathlib import Path

from monitor.sentiment.base import LABELS, Label, Sentiment, SentimentScorer
from simmim.errors import ConfigError

SCORERS = ("finance", "finance-rules", "vader", "learned", "transformers")

__all__ = ["LABELS", "SCORERS", "Label", "Sentiment", "SentimentScorer", "make_scorer"]


def make_scorer(
    name: str, *, model: Path | str | None = None, cache_dir: Path | None = None
) -> SentimentScorer:
    """``cache_dir``: where the finance scorer keeps its derived word-piece table."""
    if name == "finance":
        from monitor.sentiment.finance_model import FinanceModelSentiment

        return FinanceModelSentiment(Path(str(model)) if model else None, cache_dir=cache_dir)
    if name == "finance-rules":
        from monitor.sentiment.finance import FinanceSentiment

        return FinanceSentiment()
    if name == "vader":
        from monitor.sentiment.simple import VaderSentiment

        return VaderSentiment()
    if name in ("learned", "transformers") and model is None:
        raise ConfigError(
            f"the {name} sentiment scorer needs a model",
            hint="set SIMMIM_MONITOR__SENTIMENT_MODEL (train one with `simmim train-sentiment`)",
        )
    if name == "learned":
        from monitor.sentiment.learned import LearnedSentiment

        return LearnedSentiment(Path(str(model)))
    if name == "transformers":
        from monitor.sentiment.simple import TransformerSentiment

        return TransformerSentiment(str(model))
    raise ConfigError(
        f"unknown sentiment scorer {name!r}", hint=f"choose one of {', '.join(SCORERS)}"
    )
