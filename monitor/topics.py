"""Topics: zero-shot in the joint image-text space, plus keyword evidence.

Each topic's prompts are embedded by the text tower once; an item's score for a topic is a
softmax over its cosine to every topic and to a few generic "background" prompts, so an
image-only post gets topics from what it shows. Keywords in the text (whole words, case-
insensitive) add evidence a small or unfamiliar model may miss. Multi-label: every topic
whose combined score passes the threshold is kept.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

BACKGROUND_PROMPTS = (
    "a photo",
    "a news headline",
    "a social media post",
    "a picture of people",
    "a company announcement",
)
# CLIP's logit scale: cosine differences of ~0.05 are meaningful.
TEMPERATURE = 0.01


class TopicSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    prompts: list[str] = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)


def _t(name: str, prompts: str, keywords: str) -> TopicSpec:
    return TopicSpec(
        name=name,
        prompts=[p.strip() for p in prompts.split("|")],
        keywords=[k.strip() for k in keywords.split(",")],
    )


DEFAULT_TOPICS: tuple[TopicSpec, ...] = (
    _t(
        "earnings",
        "a company's quarterly earnings results|profit and revenue figures|an earnings report",
        "earnings, quarterly results, q1, q2, q3, q4, eps, revenue, net income, operating profit,"
        " net profit, profit, net sales, results",
    ),
    _t(
        "guidance",
        "a company raises or cuts its outlook|profit guidance and forecast",
        "guidance, outlook, forecast, profit warning, raises forecast, cuts forecast",
    ),
    _t(
        "m&a",
        "a merger or acquisition deal|a company buys another company|a takeover bid",
        "merger, acquisition, acquire, acquires, acquired, takeover, buyout, deal to buy, stake,"
        " bid for",
    ),
    _t(
        "central banks and rates",
        "the central bank changes interest rates|the federal reserve|a rate hike or cut",
        "fed, federal reserve, ecb, central bank, interest rate, interest rates, rate hike,"
        " rate cut, powell, lagarde, bank of england, monetary policy, basis points",
    ),
    _t(
        "inflation",
        "rising consumer prices and inflation|the consumer price index",
        "inflation, cpi, consumer prices, price index, deflation, pce",
    ),
    _t(
        "layoffs",
        "a company lays off workers|job cuts and redundancies",
        "layoffs, layoff, job cuts, cut jobs, redundancies, laid off, lay off, headcount",
    ),
    _t(
        "lawsuits and regulation",
        "a lawsuit or court ruling against a company|regulators fine or investigate a company",
        "lawsuit, sued, sues, court, ruling, regulator, regulators, sec, antitrust, probe,"
        " investigation, fined, fine, settlement, class action",
    ),
    _t(
        "banking stress",
        "a bank run or a failing bank|banks in financial distress",
        "bank run, deposit outflows, bank failure, bailout, liquidity crisis, insolvency,"
        " fdic, capital shortfall",
    ),
    _t(
        "crypto",
        "bitcoin and cryptocurrency markets|a crypto exchange",
        "bitcoin, btc, ethereum, eth, crypto, cryptocurrency, stablecoin, blockchain, token",
    ),
    _t(
        "supply chain",
        "supply chain disruption and shortages|shipping containers and ports",
        "supply chain, shortage, shortages, shipping, freight, port congestion, logistics,"
        " semiconductor shortage",
    ),
    _t(
        "energy and commodities",
        "oil prices and energy markets|gold and commodity prices",
        "oil, crude, brent, wti, opec, natural gas, gold, copper, commodities",
    ),
    _t(
        "markets",
        "the stock market rallies or sells off|a stock price chart",
        "stocks, stock market, shares, s&p 500, nasdaq, dow, rally, sell-off, selloff,"
        " market, index",
    ),
)


@dataclass(frozen=True)
class TopicHit:
    name: str
    score: float


class TopicScorer:
    """Scores items against a topic set; build once per model (it embeds the prompts)."""

    name = "zero-shot-topics"

    def __init__(
        self,
        topics: Sequence[TopicSpec],
        prompt_vectors: np.ndarray,
        background_vectors: np.ndarray,
        *,
        threshold: float = 0.5,
        fingerprint: str = "",
    ) -> None:
        self.topics = list(topics)
        self.threshold = threshold
        self._prompts = prompt_vectors.astype(np.float32)  # one mean vector per topic
        self._background = background_vectors.astype(np.float32)
        self._keywords = [
            re.compile(
                r"(?<![\w$])(?:" + "|".join(re.escape(k.lower()) for k in t.keywords) + r")(?!\w)"
            )
            if t.keywords
            else None
            for t in self.topics
        ]
        spec = json.dumps([t.model_dump() for t in self.topics], sort_keys=True)
        digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
        self.version = f"1:{fingerprint}:{digest}"  # new topics or model → re-score

    @classmethod
    def build(
        cls, topics: Sequence[TopicSpec], encoder: object, *, threshold: float = 0.5
    ) -> TopicScorer:
        """Embed every topic's prompts (mean of its prompts, normalised) with ``encoder``."""
        encode = encoder.encode_texts  # type: ignore[attr-defined]
        vectors = []
        for topic in topics:
            mean = np.asarray(encode(topic.prompts), np.float32).mean(axis=0)
            vectors.append(mean / (np.linalg.norm(mean) or 1.0))
        background = np.asarray(encode(list(BACKGROUND_PROMPTS)), np.float32)
        return cls(
            topics,
            np.stack(vectors),
            background,
            threshold=threshold,
            fingerprint=str(getattr(encoder, "fingerprint", "")),
        )

    def keyword_scores(self, text: str) -> np.ndarray:
        lowered = text.lower()
        scores = np.zeros(len(self.topics), np.float32)
        for i, pattern in enumerate(self._keywords):
            if pattern is not None:
                hits = len(pattern.findall(lowered))
                scores[i] = 1.0 - 0.4**hits if hits else 0.0  # 1 hit 0.6, 2 hits 0.84
        return scores

    def embedding_scores(self, vectors: np.ndarray) -> np.ndarray:
        """Per item and topic: softmax share against all topics and the background prompts."""
        if not len(vectors):
            return np.zeros((0, len(self.topics)), np.float32)
        sims = vectors.astype(np.float32) @ np.vstack([self._prompts, self._background]).T
        logits = sims / TEMPERATURE
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs[:, : len(self.topics)]

    def score(
        self, texts: Sequence[str], vectors: np.ndarray | None = None
    ) -> list[list[TopicHit]]:
        """Topics per item, best first. ``vectors`` (fused, normalised) may hold zero rows
        for items that have none; text then decides alone."""
        embedded = (
            self.embedding_scores(vectors)
            if vectors is not None
            else np.zeros((len(texts), len(self.topics)), np.float32)
        )
        out = []
        for text, by_vector in zip(texts, embedded, strict=True):
            by_words = self.keyword_scores(text or "")
            # Independent evidence: P(topic) = 1 - (1 - p_words)(1 - p_vector)
            combined = 1.0 - (1.0 - by_words) * (1.0 - by_vector)
            hits = [
                TopicHit(self.topics[i].name, round(float(combined[i]), 4))
                for i in np.argsort(-combined)
                if combined[i] >= self.threshold
            ]
            out.append(hits)
        return out
