"""Fitting a ``finance`` sentiment model: the shipped default, or one on a user's own texts.

A tenth of the texts is held out: it picks the convolution's best epoch, fits the
temperature that calibrates the blend, and is what the report's figures are measured on.
The models are not refitted on all texts afterwards: the temperature is calibrated for the
very models that are saved.
With ``base`` the new model is stacked on the shipped default: its linear part also sees
the default's output, and its convolution starts from the default's weights, so a few
hundred labelled texts of one's own adjust the default rather than start from nothing.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from monitor.sentiment.base import LABELS
from monitor.sentiment.finance import FinanceSentiment
from monitor.sentiment.finance_model import (
    ARRAYS_FILE,
    DENSE_SCALE,
    META_FILE,
    Blend,
    Features,
    FinanceModelSentiment,
    _Linear,
    build_features,
    cnn_from_state,
    head_logits,
    hidden_table,
    pad_pieces,
    padded_table,
    piece_cnn,
    pooled_features,
    softmax,
)
from monitor.sentiment.metrics import calibration_error, classification_report
from monitor.sentiment.token_vectors import TokenVectors, shared_token_vectors
from simmim.files import atomic_write_bytes

log = logging.getLogger(__name__)

HIDDEN, FILTERS = 128, 96
TEMPERATURES = np.round(np.arange(0.4, 3.01, 0.05), 2)


@dataclass
class FinanceTrainResult:
    folder: Path
    n_train: int
    n_holdout: int
    holdout: dict[str, object]


def fit_finance_model(
    texts: Sequence[str],
    labels: Sequence[str],
    folder: Path,
    *,
    base: bool = False,
    cache_dir: Path | None = None,
    tokens: TokenVectors | None = None,
    holdout: float = 0.1,
    epochs: int = 8,
    seed: int = 0,
) -> FinanceTrainResult:
    import torch

    torch.manual_seed(seed)
    tokens = tokens or shared_token_vectors(None, cache_dir)
    base_model = FinanceModelSentiment(tokens=tokens) if base else None
    y = np.array([LABELS.index(label) for label in labels])  # type: ignore[arg-type]
    order = np.random.default_rng(seed).permutation(len(texts))
    cut = int(len(texts) * (1 - holdout)) if len(texts) >= 20 else len(texts)
    train_idx, test_idx = order[:cut], order[cut:]
    if not len(test_idx):
        test_idx = train_idx  # too few texts to hold any out: calibrate on what we have
    every = build_features(texts, FinanceSentiment(), tokens, base_model)
    train, test = _subset(every, train_idx), _subset(every, test_idx)

    init = base_model._cnn.state_dict() if base_model else None
    vocabulary, idf, coef, intercept = _fit_linear(train, y[train_idx])
    linear = _Linear(vocabulary, {"idf": idf, "coef": coef, "intercept": intercept})
    best_epochs, cnn_state = _fit_cnn(
        train, y[train_idx], test, y[test_idx], tokens, init=init, epochs=epochs
    )

    # Calibrate the blend on the held-out texts.
    cnn = cnn_from_state(cnn_state, tokens.dim, HIDDEN, FILTERS)
    blend = Blend()
    held_logits = blend.combine(linear.logits(test), _cnn_logits(cnn, tokens, test), test.dense)
    temperature = _fit_temperature(held_logits, y[test_idx])
    probs = softmax(held_logits / temperature)
    predicted = [LABELS[i] for i in probs.argmax(1)]
    report = classification_report([LABELS[i] for i in y[test_idx]], predicted)
    report.update(
        calibration_error(probs.max(1).tolist(), (probs.argmax(1) == y[test_idx]).tolist())
    )
    arrays: dict[str, np.ndarray] = {"idf": idf, "coef": coef, "intercept": intercept}
    arrays.update({f"cnn.{k}": v for k, v in cnn_state.items()})
    meta = {
        "version": 1,
        "token_vectors": tokens.key,
        "vocabulary": vocabulary,
        "blend": {**asdict(blend), "temperature": float(temperature)},
        "cnn": {"hidden": HIDDEN, "filters": FILTERS, "dense": int(every.dense.shape[1])},
        "base": bool(base),
        "trained": {
            "n_train": len(train_idx),
            "n_holdout": len(test_idx),
            "holdout": report,
            "epochs": best_epochs,
        },
    }
    _save(folder, meta, arrays)
    return FinanceTrainResult(folder, len(train_idx), len(test_idx), report)


def _subset(f: Features, idx: np.ndarray) -> Features:
    return Features(
        [f.texts[i] for i in idx],
        [f.pieces[i] for i in idx],
        f.mean[idx],
        f.dense[idx],
        f.base[idx] if f.base is not None else None,
    )


def _fit_linear(
    train: Features, y: np.ndarray
) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2),
        min_df=2 if len(train.texts) >= 200 else 1,
        sublinear_tf=True,
        max_features=30000,
    )
    x = _Linear.matrix(vectorizer, train, fit=True)
    classifier = LogisticRegression(C=4.0, max_iter=3000, class_weight="balanced")
    classifier.fit(x, y)
    coef = np.zeros((len(LABELS), x.shape[1]), np.float32)
    intercept = np.full(len(LABELS), -30.0, np.float32)  # a class never seen stays unlikely
    for row, cls in enumerate(classifier.classes_):
        if len(classifier.classes_) == 2:  # binary: one column, for the second class
            sign = 1 if row == 1 else -1
            coef[cls] = sign * classifier.coef_[0] / 2
            intercept[cls] = sign * classifier.intercept_[0] / 2
        else:
            coef[cls] = classifier.coef_[row]
            intercept[cls] = classifier.intercept_[row]
    vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    return vocabulary, vectorizer.idf_.astype(np.float32), coef, intercept


def _fit_cnn(
    train: Features,
    y_train: np.ndarray,
    test: Features,
    y_test: np.ndarray,
    tokens: TokenVectors,
    *,
    init: dict | None,
    epochs: int,
    batch: int = 64,
) -> tuple[int, dict[str, np.ndarray]]:
    """Best epoch count by held-out macro-F1 and the weights then."""
    import torch
    import torch.nn.functional as F

    net = piece_cnn(tokens.dim, HIDDEN, FILTERS, train.dense.shape[1])
    if init is not None:
        net.load_state_dict(init)
    table = padded_table(tokens)
    pad = len(table) - 1
    counts = np.bincount(y_train, minlength=len(LABELS)).astype(np.float32)
    weight = torch.tensor(len(y_train) / (len(LABELS) * np.maximum(counts, 1)))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    target = torch.from_numpy(y_train)
    best: tuple[float, int, dict[str, np.ndarray]] | None = None
    generator = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        net.train()
        for rows in torch.randperm(len(y_train), generator=generator).split(batch):
            ids, mask = pad_pieces([train.pieces[i] for i in rows], pad)
            logits = net(
                table[torch.from_numpy(ids)],
                torch.from_numpy(mask),
                torch.from_numpy(train.dense[rows.numpy()] * DENSE_SCALE),
            )
            loss = F.cross_entropy(logits, target[rows], weight=weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
        predicted = _cnn_logits(net, tokens, test).argmax(1)
        f1 = float(
            classification_report([LABELS[i] for i in y_test], [LABELS[i] for i in predicted])[
                "macro_f1"
            ]  # type: ignore[arg-type]
        )
        log.info("sentiment cnn epoch %d: held-out macro-F1 %.4f", epoch + 1, f1)
        if best is None or f1 > best[0]:
            best = (f1, epoch + 1, _state(net))
    assert best is not None  # epochs ≥ 1
    return best[1], best[2]


def _state(net: object) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}  # type: ignore[attr-defined]


def _cnn_logits(net: object, tokens: TokenVectors, f: Features) -> np.ndarray:
    return head_logits(net, pooled_features(net, hidden_table(net, tokens), f.pieces), f.dense)


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    return float(min(TEMPERATURES, key=nll))


def _save(folder: Path, meta: dict[str, object], arrays: dict[str, np.ndarray]) -> None:
    """Arrays first, then the JSON that names them, each replaced atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(folder / ARRAYS_FILE, buffer.getvalue())
    atomic_write_bytes(folder / META_FILE, json.dumps(meta, sort_keys=True).encode())
