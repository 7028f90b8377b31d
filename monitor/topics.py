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

from simmim.topic_defaults import DEFAULT_TOPICS, TopicSpec

__all__ = ["DEFAULT_TOPICS", "TopicHit", "TopicScorer", "TopicSpec"]

BACKGROUND_PROMPTS = (
    "a photo",
    "a news headline",
    "a social media post",
    "a picture of people",
    "a company announcement",
)
# CLIP's logit scale: cosine differences of ~0.05 are meaningful.
TEMPERATURE = 0.01


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
        vector_weight: float = 1.0,
        fingerprint: str = "",
    ) -> None:
        self.topics = list(topics)
        self.threshold = threshold
        self.vector_weight = vector_weight
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
        self.version = (
            f"1:{fingerprint}:{digest}:{vector_weight:g}"  # new topics or model → re-score
        )

    @classmethod
    def build(
        cls,
        topics: Sequence[TopicSpec],
        encoder: object,
        *,
        threshold: float = 0.5,
        vector_weight: float = 1.0,
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
            vector_weight=vector_weight,
            fingerprint=str(getattr(encoder, "fingerprint", "")),
        )

    @classmethod
    def keywords_only(cls, topics: Sequence[TopicSpec], *, threshold: float = 0.5) -> TopicScorer:
        """Topics from keywords alone, for when no model can be loaded; its own version, so
        `simmim monitor rescore` replaces these scores once the model is back."""
        empty = np.zeros((0, 1), np.float32)
        return cls(
            topics,
            empty,
            empty,
            threshold=threshold,
            vector_weight=0.0,
            fingerprint="keywords-only",
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
            combined = 1.0 - (1.0 - by_words) * (1.0 - self.vector_weight * by_vector)
            hits = [
                TopicHit(self.topics[i].name, round(float(combined[i]), 4))
                for i in np.argsort(-combined)
                if combined[i] >= self.threshold
            ]
            out.append(hits)
        return out
