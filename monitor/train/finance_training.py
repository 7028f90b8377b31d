"""Fitting a ``finance`` sentiment model: the shipped default, or one on a user's own texts.

Texts come in **domains** (tweets, news headlines, news passages, or one domain for a user's
file without a domain column). Every domain keeps a part of its texts aside (by a hash of
the normalised text, so near-repeats stay on one side and the split does not depend on the
file's order), and every choice is made on the **worst** domain's held-out part, never on
the average: the convolution's epoch, the blend of the readers, the weight each domain's
texts get, and the temperature that calibrates the blend (fitted on the held-out texts of
every domain with an equal say each, so a confidence means the same on a post as on a
headline). A model that fits one corpus and falls on another is the failure this avoids.
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

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
from monitor.sentiment.splits import holdout_mask
from monitor.sentiment.token_vectors import TokenVectors, shared_token_vectors
from simmim.files import atomic_write_bytes

log = logging.getLogger(__name__)

HIDDEN, FILTERS = 128, 96
TEMPERATURES = np.round(np.arange(0.4, 3.01, 0.05), 2)
LINEAR_WEIGHTS = (0.3, 0.5, 0.7)
RULES_WEIGHTS = (0.0, 0.15, 1 / 3, 0.5)
ONE_DOMAIN = "all"


@dataclass
class FinanceTrainResult:
    folder: Path
    n_train: int
    n_holdout: int
    holdout: dict[str, object]  # the held-out figures over all domains
    domains: dict[str, dict[str, object]] = field(default_factory=dict)  # the same per domain
    held_out: list[int] = field(default_factory=list)  # indices of the texts kept aside


def fit_finance_model(
    texts: Sequence[str],
    labels: Sequence[str],
    folder: Path,
    *,
    domains: Sequence[str] | None = None,
    train_only: Sequence[str] = (),
    split_keys: Sequence[str] | None = None,
    base: bool = False,
    cache_dir: Path | None = None,
    tokens: TokenVectors | None = None,
    holdout: float = 0.15,
    epochs: int = 8,
    seed: int = 0,
) -> FinanceTrainResult:
    import torch

    torch.manual_seed(seed)
    tokens = tokens or shared_token_vectors(None, cache_dir)
    base_model = FinanceModelSentiment(tokens=tokens) if base else None
    y = np.array([LABELS.index(label) for label in labels])  # type: ignore[arg-type]
    domain = np.array(list(domains) if domains is not None else [ONE_DOMAIN] * len(texts))
    # ``split_keys``: the text that decides a row's side (a clause goes with its sentence).
    keys = split_keys if split_keys is not None else texts
    held = holdout_mask(keys, holdout) if len(texts) >= 20 else np.zeros(len(texts), bool)
    for name in np.unique(domain):  # every judged domain needs texts on both sides
        members = domain == name
        if name in train_only or not (held & members).any() or held[members].all():
            held[members] = False
    train_idx, test_idx = np.flatnonzero(~held), np.flatnonzero(held)
    if not len(test_idx):
        test_idx = train_idx  # too few texts to hold any out: calibrate on what we have
    every = build_features(texts, FinanceSentiment(), tokens, base_model)
    train, test = subset(every, train_idx), subset(every, test_idx)
    judge = WorstDomain(y[test_idx], domain[test_idx])
    weights = domain_weights(domain[train_idx])

    init = base_model._cnn.state_dict() if base_model else None
    vocabulary, idf, coef, intercept = _fit_linear(train, y[train_idx], weights)
    linear = _Linear(vocabulary, {"idf": idf, "coef": coef, "intercept": intercept})
    best_epochs, _, cnn_state = fit_cnn(
        train, y[train_idx], weights, test, judge, tokens, init=init, epochs=epochs
    )

    # The blend and its temperature, on the held-out texts.
    cnn = cnn_from_state(cnn_state, tokens.dim, HIDDEN, FILTERS)
    by_linear, by_cnn = linear.logits(test), cnn_logits(cnn, tokens, test)
    blend = max(
        (Blend(linear_weight=w, rules_weight=r) for w in LINEAR_WEIGHTS for r in RULES_WEIGHTS),
        key=lambda b: judge.score(b.combine(by_linear, by_cnn, test.dense)),
    )
    held_logits = blend.combine(by_linear, by_cnn, test.dense)
    temperature = judge.temperature(held_logits)
    probs = softmax(held_logits / temperature)
    report = figures(y[test_idx], probs)
    per_domain = {
        str(name): figures(y[test_idx][members], probs[members])
        for name in np.unique(domain[test_idx])
        if (members := domain[test_idx] == name).any()
    }
    log.info("sentiment blend %s, temperature %.2f: %s", blend, temperature, per_domain)
    arrays: dict[str, np.ndarray] = {"idf": idf, "coef": coef, "intercept": intercept}
    arrays.update({f"cnn.{k}": v for k, v in cnn_state.items()})
    meta = {
        "version": 1,
        "token_vectors": tokens.key,
        "vocabulary": vocabulary,
        "blend": {**asdict(replace(blend, temperature=float(temperature)))},
        "cnn": {"hidden": HIDDEN, "filters": FILTERS, "dense": int(every.dense.shape[1])},
        "base": bool(base),
        "trained": {
            "n_train": len(train_idx),
            "n_holdout": len(test_idx),
            "holdout": report,
            "domains": per_domain,
            "epochs": best_epochs,
        },
    }
    save_model(folder, meta, arrays)
    return FinanceTrainResult(
        folder, len(train_idx), len(test_idx), report, per_domain, test_idx.tolist()
    )


def figures(y: np.ndarray, probs: np.ndarray) -> dict[str, object]:
    """Accuracy, macro-F1, per-class F1, ECE and n of calibrated probabilities."""
    predicted = probs.argmax(1)
    report = classification_report([LABELS[i] for i in y], [LABELS[i] for i in predicted])
    report["ece"] = calibration_error(probs.max(1).tolist(), (predicted == y).tolist())["ece"]
    report["n"] = len(y)
    return report


def domain_weights(domain: np.ndarray) -> np.ndarray:
    """Per-text loss weights giving each domain the square root of an equal share: a small
    domain (a few hundred passages) is not drowned by a large one, nor repeated into noise."""
    _, inverse, counts = np.unique(domain, return_inverse=True, return_counts=True)
    share = np.sqrt(counts.max() / counts)  # ×1 for the largest domain
    weights = share[inverse]
    return (weights * len(weights) / weights.sum()).astype(np.float32)


class WorstDomain:
    """Scores held-out predictions by the worst domain's macro-F1 (the mean breaks ties)."""

    def __init__(self, y: np.ndarray, domain: np.ndarray) -> None:
        self.y = y
        self.groups = [np.flatnonzero(domain == name) for name in np.unique(domain)]

    def macro_f1s(self, predicted: np.ndarray) -> list[float]:
        return [
            float(
                classification_report(
                    [LABELS[i] for i in self.y[g]], [LABELS[i] for i in predicted[g]]
                )["macro_f1"]  # type: ignore[arg-type]
            )
            for g in self.groups
        ]

    def score(self, logits: np.ndarray) -> tuple[float, float]:
        f1s = self.macro_f1s(logits.argmax(1))
        return min(f1s), sum(f1s) / len(f1s)

    def temperature(self, logits: np.ndarray) -> float:
        """The temperature minimising the domains' mean negative log-likelihood (an equal
        say each, so the largest domain does not set the confidence of the others)."""

        def nll(t: float) -> float:
            z = logits / t
            z = z - z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            return float(np.mean([-logp[g, self.y[g]].mean() for g in self.groups]))

        return float(min(TEMPERATURES, key=nll))


def subset(f: Features, idx: np.ndarray) -> Features:
    return Features(
        [f.texts[i] for i in idx],
        [f.pieces[i] for i in idx],
        f.mean[idx],
        f.dense[idx],
        f.base[idx] if f.base is not None else None,
    )


def classifier_arrays(model: Any, classes: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted scikit-learn logistic regression as (classes × width) weights and biases;
    a class never seen stays unlikely, and a binary fit's one column becomes two."""
    coef = np.zeros((classes, width), np.float32)
    intercept = np.full(classes, -30.0, np.float32)
    for row, cls in enumerate(model.classes_):
        if len(model.classes_) == 2:
            sign = 1 if row == 1 else -1
            coef[cls] = sign * model.coef_[0] / 2
            intercept[cls] = sign * model.intercept_[0] / 2
        else:
            coef[cls], intercept[cls] = model.coef_[row], model.intercept_[row]
    return coef, intercept


def tfidf_vectorizer(n_texts: int, max_features: int) -> Any:
    """Word and bigram TF-IDF as ``Tfidf`` replays it (a term seen once is noise past 200)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=(1, 2),
        min_df=2 if n_texts >= 200 else 1,
        sublinear_tf=True,
        max_features=max_features,
    )


def _fit_linear(
    train: Features, y: np.ndarray, weights: np.ndarray
) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    vectorizer = tfidf_vectorizer(len(train.texts), 30000)
    x = _Linear.matrix(vectorizer, train, fit=True)
    classifier = LogisticRegression(C=4.0, max_iter=3000, class_weight="balanced")
    classifier.fit(x, y, sample_weight=weights)
    coef, intercept = classifier_arrays(classifier, len(LABELS), x.shape[1])
    vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    return vocabulary, vectorizer.idf_.astype(np.float32), coef, intercept


class Judge(Protocol):
    def score(self, logits: np.ndarray) -> tuple[float, float]: ...


def fit_cnn(
    train: Features,
    y_train: np.ndarray,
    weights: np.ndarray,
    test: Features,
    judge: Judge,
    tokens: TokenVectors,
    *,
    init: dict | None,
    epochs: int,
    batch: int = 64,
    classes: int = len(LABELS),
    size: tuple[int, int] = (HIDDEN, FILTERS),
    balance: float = 1.0,
    rank: int = 0,
    smoothing: float = 0.0,
    keep_epoch: int | None = None,
    averages: tuple[int, ...] = (1,),
    keep_average: int = 1,
) -> tuple[int, int, dict[str, np.ndarray]]:
    """Best epoch count by the judge's held-out score (for sentiment: the worst domain's
    macro-F1), and the weights then. ``balance``: the power of the inverse class
    frequency that weights the loss (1: every class counts alike; 0.5 for many skewed
    classes, where full weights would overfit the rare ones). ``keep_epoch``: the count
    is already chosen (a refit on more texts): the weights after that epoch, on the same
    schedule, without asking the judge. ``averages``: also judge the mean of the weights of
    the last n epochs (one network, a free ensemble of the points the late, small steps
    circle); returns (epochs, how many averaged, weights), ``keep_average`` for a refit."""
    import torch
    import torch.nn.functional as F

    table = padded_table(tokens)
    pad = len(table) - 1
    net = piece_cnn(tokens.dim, *size, train.dense.shape[1], classes, rank=rank, vocab=pad)
    if init is not None:
        net.load_state_dict(init)
    counts = np.bincount(y_train, minlength=classes).astype(np.float32)
    weight = torch.tensor(
        (len(y_train) / (classes * np.maximum(counts, 1))) ** balance, dtype=torch.float32
    )
    per_text = torch.from_numpy(weights)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    # The rate decays to nothing over the epochs: late epochs settle instead of jumping
    # between minima, so the epoch picked on held-out texts is not a lucky one.
    steps = epochs * -(-len(y_train) // batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, steps))
    target = torch.from_numpy(y_train)
    best: tuple[tuple[float, float], int, int, dict[str, np.ndarray]] | None = None
    recent: list[dict[str, np.ndarray]] = []
    generator = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        net.train()
        for rows in torch.randperm(len(y_train), generator=generator).split(batch):
            ids, mask = pad_pieces([train.pieces[i] for i in rows], pad)
            id_tensor = torch.from_numpy(ids)
            logits = net(
                table[id_tensor],
                torch.from_numpy(mask),
                torch.from_numpy(train.dense[rows.numpy()] * DENSE_SCALE),
                id_tensor,
            )
            losses = F.cross_entropy(
                logits, target[rows], weight=weight, reduction="none", label_smoothing=smoothing
            )
            loss = (losses * per_text[rows]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        net.eval()
        recent = [*recent, _state(net)][-max(*averages, keep_average) :]
        if keep_epoch is not None:
            if epoch + 1 == keep_epoch:
                return keep_epoch, keep_average, _mean_state(recent[-keep_average:])
            continue
        for n in averages:
            if len(recent) < n:
                continue
            state = recent[-1] if n == 1 else _mean_state(recent[-n:])
            scorer = net if n == 1 else _net_with(state, net)
            f1 = judge.score(cnn_logits(scorer, tokens, test))
            log.info("cnn epoch %d, mean of %d: held-out %.4f, %.4f", epoch + 1, n, *f1)
            if best is None or f1 > best[0]:
                best = (f1, epoch + 1, n, state)
    assert best is not None  # epochs ≥ 1
    return best[1], best[2], best[3]


def _mean_state(states: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(states) == 1:
        return states[0]
    return {
        k: np.mean([s[k] for s in states], axis=0).astype(states[0][k].dtype) for k in states[0]
    }


def _net_with(state: dict[str, np.ndarray], like: object) -> object:
    import copy

    import torch

    other = copy.deepcopy(like)
    other.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})  # type: ignore[attr-defined]
    other.eval()  # type: ignore[attr-defined]
    return other


def _state(net: object) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}  # type: ignore[attr-defined]


def cnn_logits(net: object, tokens: TokenVectors, f: Features) -> np.ndarray:
    return head_logits(net, pooled_features(net, hidden_table(net, tokens), f.pieces), f.dense)


def save_model(
    folder: Path,
    meta: dict[str, object],
    arrays: dict[str, np.ndarray],
    *,
    files: tuple[str, str] = (META_FILE, ARRAYS_FILE),
) -> None:
    """Arrays first, then the JSON that names them, each replaced atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(folder / files[1], buffer.getvalue())
    atomic_write_bytes(folder / files[0], json.dumps(meta, sort_keys=True).encode())
