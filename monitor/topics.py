"""Topics: a trained classifier for the taxonomy, and event topics for what alerts watch.

Two kinds, one list of hits per item:

- **The taxonomy** (the 20 topics of finance news feeds: Earnings, Analyst Update, Fed |
  Central Banks, M&A | Investments, …) comes from ``TopicClassifier``, a model trained on
  labelled texts with calibrated probabilities: every topic at or above its fitted
  threshold, at most three.
- **Event topics** (layoffs, banking stress, crypto, supply chain, inflation, guidance…:
  the settings' ``monitor.topics``) are defined by prompts, keywords and optional example
  texts. A text's evidence for one is its MiniLM similarity to the topic (the mean
  word-piece vector of the text against that of the prompts and examples, as a softmax
  share against every topic and a few generic background prompts) and its keyword hits;
  **one keyword alone never makes a topic** (one hit is 0.35, two 0.58). Items with no text
  (an image-only post) get event topics from the CLIP space instead: the fused vector
  against the prompts' CLIP embeddings, when a real model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monitor.sentiment.token_vectors import TokenVectors
from monitor.topic_model import TopicClassifier
from simmim.topic_defaults import DEFAULT_TOPICS, TopicSpec

__all__ = ["DEFAULT_TOPICS", "TopicHit", "TopicScorer", "TopicSpec"]

BACKGROUND_PROMPTS = (
    "a photo",
    "a news headline",
    "a social media post",
    "a picture of people",
    "a company announcement",
    "the company said on monday",
    "shares of the company",
)
CLIP_TEMPERATURE = 0.01  # CLIP's logit scale: cosine differences of ~0.05 are meaningful
TEXT_TEMPERATURE = 0.03  # mean word-piece vectors sit closer together than CLIP's
TEXT_WEIGHT = 0.7  # similarity alone reaches at most this
MAX_SEGMENTS = 8  # sentences of a text read for similarity (a long article: its start)
_SENTENCES = re.compile(r"(?<=[.!?;:])\s+|\n+")
COSINE_FLOOR, COSINE_SPAN = 0.35, 0.25
KEYWORD_MISS = 0.65  # each hit keeps this share of doubt: 1 hit 0.35, 2 hits 0.58


@dataclass(frozen=True)
class TopicHit:
    name: str
    score: float


class TopicScorer:
    """Scores items against the taxonomy and the event topics; build once per model."""

    name = "topics"

    def __init__(
        self,
        topics: Sequence[TopicSpec],
        prompt_vectors: np.ndarray,
        background_vectors: np.ndarray,
        *,
        threshold: float = 0.5,
        vector_weight: float = 1.0,
        fingerprint: str = "",
        tokens: TokenVectors | None = None,
        classifier: TopicClassifier | None = None,
    ) -> None:
        self.topics = list(topics)
        self.threshold = threshold
        self.vector_weight = vector_weight
        self.classifier = classifier
        self.tokens = tokens
        self._prompts = prompt_vectors.astype(np.float32)  # CLIP: one mean vector per topic
        self._background = background_vectors.astype(np.float32)
        self._keywords = [
            re.compile(r"(?<![\w$])(?:" + "|".join(_phrase(k) for k in t.keywords) + r")(?!\w)")
            if t.keywords
            else None
            for t in self.topics
        ]
        self._vocabulary = {
            w.strip(".,;:!?'\"()").lower()
            for t in self.topics
            for phrase in (*t.prompts, *t.keywords, *t.examples)
            for w in phrase.split()
        }
        self._text_topics = self._text_vectors() if tokens is not None else None
        spec = json.dumps([t.model_dump() for t in self.topics], sort_keys=True)
        digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
        model = classifier.version if classifier is not None else "none"
        words = tokens.key if tokens is not None else "none"
        self.version = f"2:{fingerprint}:{digest}:{vector_weight:g}:{model}:{words}"[:72]

    @classmethod
    def build(
        cls,
        topics: Sequence[TopicSpec],
        encoder: object | None,
        *,
        threshold: float = 0.5,
        vector_weight: float = 1.0,
        tokens: TokenVectors | None = None,
        classifier: TopicClassifier | None = None,
    ) -> TopicScorer:
        """Embed every topic's prompts with ``encoder``'s text tower (for image-only items);
        ``encoder`` None: no CLIP model, text evidence only."""
        if encoder is None:
            empty = np.zeros((0, 1), np.float32)
            return cls(
                topics,
                empty,
                empty,
                threshold=threshold,
                vector_weight=0.0,
                fingerprint="keywords-only" if tokens is None else "text-only",
                tokens=tokens,
                classifier=classifier,
            )
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
            tokens=tokens,
            classifier=classifier,
        )

    @classmethod
    def keywords_only(cls, topics: Sequence[TopicSpec], *, threshold: float = 0.5) -> TopicScorer:
        """Event topics from keywords alone (no MiniLM table, no model): its own version, so
        `simmim monitor rescore` replaces these scores once the models are back."""
        return cls.build(topics, None, threshold=threshold)

    def _text_vectors(self) -> np.ndarray:
        assert self.tokens is not None
        rows = []
        for topic in self.topics:
            texts = [*topic.prompts, *topic.examples, " ".join(topic.keywords)]
            mean = self.tokens.mean(self.tokens.pieces(texts)).mean(axis=0)
            rows.append(mean / (np.linalg.norm(mean) or 1.0))
        background = self.tokens.mean(self.tokens.pieces(list(BACKGROUND_PROMPTS)))
        return np.vstack([*rows, background]).astype(np.float32) if rows else background

    def _without_names(self, segment: str) -> str:
        """The segment without capitalised words the topics never use ("Nordwind Energy
        to cut 500 jobs" → "to cut 500 jobs"): names say who, not what about, and pull
        the mean vector away from the topic."""
        kept = [
            w
            for w in segment.split()
            if not w[:1].isupper() or w.strip(".,;:!?'\"()").lower() in self._vocabulary
        ]
        return " ".join(kept) if len(kept) >= 2 else segment

    def keyword_scores(self, text: str) -> np.ndarray:
        lowered = text.lower()
        scores = np.zeros(len(self.topics), np.float32)
        for i, pattern in enumerate(self._keywords):
            if pattern is not None:
                hits = len(pattern.findall(lowered))
                scores[i] = 1.0 - KEYWORD_MISS**hits if hits else 0.0
        return scores

    def text_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Per text and event topic: MiniLM similarity as a softmax share, the best over the
        text's sentences (a topic told in the headline is not diluted by the boilerplate
        around it); 0 for no text."""
        out = np.zeros((len(texts), len(self.topics)), np.float32)
        if self._text_topics is None or not self.topics or self.tokens is None:
            return out
        owners, segments = [], []
        for i, text in enumerate(texts):
            parts = [p for p in _SENTENCES.split(text) if len(p.strip()) > 2][:MAX_SEGMENTS]
            for part in parts or ([text] if text.strip() else []):
                owners.append(i)
                segments.append(self._without_names(part))
        if not segments:
            return out
        vectors = self.tokens.mean(self.tokens.pieces(segments))
        sims = vectors @ self._text_topics.T
        shares = _shares(sims, TEXT_TEMPERATURE, len(self.topics))
        # A share is relative: a segment about nothing still ranks some topic first. Only
        # a close enough cosine counts (unrelated text sits at 0.2-0.45, on-topic at 0.5+).
        close = np.clip((sims[:, : len(self.topics)] - COSINE_FLOOR) / COSINE_SPAN, 0, 1)
        np.maximum.at(out, np.array(owners), shares * close)
        return TEXT_WEIGHT * out

    def embedding_scores(self, vectors: np.ndarray) -> np.ndarray:
        """Per item and event topic: CLIP softmax share against topics and background."""
        if not len(vectors) or not len(self._prompts):
            return np.zeros((len(vectors), len(self.topics)), np.float32)
        sims = vectors.astype(np.float32) @ np.vstack([self._prompts, self._background]).T
        return _shares(sims, CLIP_TEMPERATURE, len(self.topics))

    def score(
        self, texts: Sequence[str], vectors: np.ndarray | None = None
    ) -> list[list[TopicHit]]:
        """Topics per item, best first. ``vectors`` (fused, normalised) may hold zero rows for
        items that have none; they count only for items without text."""
        texts = [t or "" for t in texts]
        by_clip = (
            self.embedding_scores(vectors)
            if vectors is not None and self.vector_weight > 0
            else np.zeros((len(texts), len(self.topics)), np.float32)
        )
        by_text = self.text_scores(texts)
        taxonomy = (
            self.classifier.topics([t for t in texts])
            if self.classifier is not None
            else [[] for _ in texts]
        )
        out = []
        for i, text in enumerate(texts):
            if text.strip():
                # Independent evidence: P(topic) = 1 - (1 - p_words)(1 - p_text)
                combined = 1.0 - (1.0 - self.keyword_scores(text)) * (1.0 - by_text[i])
            else:
                combined = self.vector_weight * by_clip[i]
            hits = [
                TopicHit(self.topics[j].name, round(float(combined[j]), 4))
                for j in np.argsort(-combined)
                if combined[j] >= self.threshold
            ]
            if text.strip():
                hits += [TopicHit(name, p) for name, p in taxonomy[i]]
            out.append(sorted(hits, key=lambda h: -h.score))
        return out


def _phrase(keyword: str) -> str:
    """A keyword's words in order, with a figure allowed between them ("cut jobs" finds
    "cut 1,200 jobs")."""
    words = [re.escape(w) for w in keyword.lower().split()]
    return r"\s+(?:[\d.,%]+\s+)?".join(words)


def _shares(sims: np.ndarray, temperature: float, topics: int) -> np.ndarray:
    logits = sims / temperature
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs[:, :topics]
