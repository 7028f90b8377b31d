"""Fitting a topic classifier: the shipped default, or one on a user's own labelled texts.

A fifth of the texts (by a hash of the normalised text) is kept aside and only reported
on; every choice — the linear model's regularisation, the convolution's epoch (and whether
to average its last epochs' weights), the blend of the two readers, the temperature and
the threshold — is made on a further part of the rest (the choice part), never on the
reported fifth. Once chosen, both readers are fitted again on every text not kept aside,
choice part included, with the same settings: the choices need texts the readers have
not seen, the shipped weights do not.
Fewer than 60 texts: nothing can be kept aside honestly, so the report says so.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor.sentiment.finance_model import Features, Tfidf, cnn_from_state, log_softmax, softmax
from monitor.sentiment.learned import require_columns
from monitor.sentiment.metrics import calibration_error
from monitor.sentiment.splits import holdout_mask
from monitor.sentiment.token_vectors import TokenVectors, shared_token_vectors
from monitor.topic_model import ARRAYS_FILE, META_FILE, linear_logits, linear_matrix, picked
from monitor.train.finance_training import (
    TEMPERATURES,
    classifier_arrays,
    cnn_logits,
    fit_cnn,
    save_model,
    tfidf_vectorizer,
)
from simmim.errors import ConfigError
from simmim.paths import DataLayout
from simmim.settings import Settings

log = logging.getLogger(__name__)

SIZE = (256, 128)  # the convolution's hidden width and filters per kernel size
RANK = 64  # a learned vector per word piece beside MiniLM's (topics have their own words)
REGULARISATION = (10.0, 30.0, 100.0)  # the logistic regression's C, chosen on the choice part
CHARS = (None, (3, 5))  # a letters reader (char_wb 3-5 grams) beside the words, or not
CHAR_FEATURES = 100_000
AVERAGES = (1, 3)  # the convolution's weights: one epoch's, or the mean of the last three
LINEAR_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)  # 0.1 too: the shipped choice, 0.2, is not the edge
THRESHOLDS = np.round(np.arange(0.2, 0.61, 0.05), 2)
MIN_TO_HOLD_OUT = 60


@dataclass
class TopicTrainResult:
    folder: Path
    n_train: int
    n_holdout: int
    report: dict[str, object] = field(default_factory=dict)  # on the kept-aside fifth


def topic_report(
    truth: Sequence[str], predicted: Sequence[str], names: Sequence[str]
) -> dict[str, object]:
    """Accuracy, macro-F1 and per-topic precision / recall / F1 of single-label predictions."""
    per: dict[str, dict[str, float]] = {}
    for name in names:
        tp = sum(t == name and p == name for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != name and p == name for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == name and p != name for t, p in zip(truth, predicted, strict=True))
        if tp + fn == 0:
            continue  # a topic absent from these texts has no recall to report
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        per[name] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "n": tp + fn,
        }
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    return {
        "n": len(truth),
        "accuracy": round(correct / max(1, len(truth)), 4),
        "macro_f1": round(float(np.mean([v["f1"] for v in per.values()])) if per else 0.0, 4),
        "topics": per,
    }


class _Judge:
    """Accuracy and macro-F1 together (their mean): macro-F1 alone swings with the two or
    three texts a rare topic has in the choice part."""

    def __init__(self, y: np.ndarray, names: Sequence[str]) -> None:
        self.y, self.names = y, list(names)

    def score(self, logits: np.ndarray) -> tuple[float, float]:
        report = topic_report(
            [self.names[i] for i in self.y], [self.names[i] for i in logits.argmax(1)], self.names
        )
        accuracy, macro = float(report["accuracy"]), float(report["macro_f1"])  # type: ignore[arg-type]
        return (accuracy + macro) / 2, accuracy


def fit_topic_model(
    texts: Sequence[str],
    labels: Sequence[str],
    folder: Path,
    *,
    cache_dir: Path | None = None,
    tokens: TokenVectors | None = None,
    holdout: float = 0.2,
    choice: float = 0.08,
    epochs: int = 10,
    seed: int = 0,
    source: str = "",
) -> TopicTrainResult:
    import torch

    torch.manual_seed(seed)
    tokens = tokens or shared_token_vectors(None, cache_dir)
    texts = [t or "" for t in texts]
    names = sorted(set(labels))
    y = np.array([names.index(label) for label in labels])
    if len(texts) >= MIN_TO_HOLD_OUT:
        reported = holdout_mask(texts, holdout)
        chooser = holdout_mask([f"choice:{t}" for t in texts], choice) & ~reported
    else:
        reported = chooser = np.zeros(len(texts), bool)
    fit_idx = np.flatnonzero(~reported & ~chooser)
    n_train = int((~reported).sum())  # what the shipped readers are fitted on, in the end
    choose_idx = np.flatnonzero(chooser) if chooser.any() else fit_idx
    report_idx = np.flatnonzero(reported)
    pieces = tokens.pieces(texts)
    mean = tokens.mean(pieces)

    def features(idx: np.ndarray) -> Features:
        return Features(
            [texts[i] for i in idx],
            [pieces[i] for i in idx],
            mean[idx],
            np.zeros((len(idx), 0), np.float32),
            None,
        )

    fit, chosen = features(fit_idx), features(choose_idx)
    judge = _Judge(y[choose_idx], names)
    linears = {
        (c, chars): _fit_linear(fit, y[fit_idx], len(names), c, chars)
        for chars in (CHARS if len(texts) >= MIN_TO_HOLD_OUT else (None,))
        for c in REGULARISATION
    }
    c_used, chars_used = max(linears, key=lambda k: judge.score(_linear_on(linears[k], chosen)))

    def fit_conv(
        f: Features, idx: np.ndarray, keep: int | None, keep_average: int = 1
    ) -> tuple[int, int, dict[str, np.ndarray]]:
        return fit_cnn(
            f,
            y[idx],
            np.ones(len(idx), np.float32),
            chosen,
            judge,
            tokens,
            init=None,
            epochs=epochs,
            classes=len(names),
            size=SIZE,
            balance=0.5,
            rank=RANK,
            smoothing=0.05,
            keep_epoch=keep,
            averages=AVERAGES,
            keep_average=keep_average,
        )

    epochs_used, averaged, state = fit_conv(fit, fit_idx, None)
    linear = linears[(c_used, chars_used)]

    def both(f: Features) -> tuple[np.ndarray, np.ndarray]:
        conv = cnn_logits(cnn_from_state(state, tokens.dim, *SIZE), tokens, f)
        return log_softmax(_linear_on(linear, f)), log_softmax(conv)

    lin, conv = both(chosen)
    weight = max(LINEAR_WEIGHTS, key=lambda w: judge.score(w * lin + (1 - w) * conv))
    blended = weight * lin + (1 - weight) * conv
    temperature = _temperature(blended, y[choose_idx])
    threshold = _threshold(softmax(blended / temperature), y[choose_idx], names)
    if chooser.any():
        every_idx = np.flatnonzero(~reported)
        every = features(every_idx)
        linear = _fit_linear(every, y[every_idx], len(names), c_used, chars_used)
        _, _, state = fit_conv(every, every_idx, epochs_used, averaged)
    (vocabulary, idf), coef, intercept = linear.blocks[0], linear.coef, linear.intercept

    report: dict[str, object] = {"kept_aside": 0}
    if len(report_idx):
        lin, conv = both(features(report_idx))
        probs = softmax((weight * lin + (1 - weight) * conv) / temperature)
        truth = [names[i] for i in y[report_idx]]
        report = topic_report(truth, [names[i] for i in probs.argmax(1)], names)
        report["ece"] = calibration_error(
            probs.max(1).tolist(), (probs.argmax(1) == y[report_idx]).tolist()
        )["ece"]
        report["kept_aside"] = len(report_idx)
    log.info(
        "topic model: C %g, letters %s, epochs %d (mean of the last %d), linear weight %.2f, T %.2f, threshold %.2f: %s",
        c_used,
        chars_used,
        epochs_used,
        averaged,
        weight,
        temperature,
        threshold,
        {k: v for k, v in report.items() if k != "topics"},
    )
    arrays = compact({"idf": idf, "coef": coef, "intercept": intercept}, state)
    letters: dict[str, object] = {}
    if chars_used is not None:
        char_vocabulary, arrays["char_idf"] = linear.blocks[1]
        letters = {"char_vocabulary": char_vocabulary, "char_range": list(chars_used)}
    meta = {
        "version": 1,
        "names": names,
        "token_vectors": tokens.key,
        "vocabulary": vocabulary,
        **letters,
        "linear_weight": float(weight),
        "temperature": float(temperature),
        "threshold": float(threshold),
        "cnn": {"hidden": SIZE[0], "filters": SIZE[1]},
        "trained": {
            "source": source,
            "n_train": n_train,
            "n_choice": len(choose_idx),
            "epochs": epochs_used,
            "regularisation": c_used,
            "letters": list(chars_used) if chars_used else None,
            "averaged_epochs": averaged,
            "report": report,
        },
    }
    save_model(folder, meta, arrays, files=(META_FILE, ARRAYS_FILE))
    return TopicTrainResult(folder, n_train, len(report_idx), report)


def compact(linear: dict[str, np.ndarray], cnn: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays to save; the two big ones (the linear weights, the learned piece vectors)
    as float16: half the file, and the probabilities move by less than 1e-3."""
    out = {**linear, "coef": linear["coef"].astype(np.float16)}
    for key, value in cnn.items():
        out[f"cnn.{key}"] = value.astype(np.float16) if key == "own.weight" else value
    return out


@dataclass
class _LinearReader:
    blocks: list[tuple[dict[str, int], np.ndarray]]  # (vocabulary, idf): words, [letters]
    chars: tuple[int, int] | None
    coef: np.ndarray
    intercept: np.ndarray

    def tfidf(self) -> list[Tfidf]:
        words, *letters = self.blocks
        out = [Tfidf(*words)]
        if letters:
            out.append(Tfidf(*letters[0], chars=self.chars))
        return out


def _linear_on(linear: _LinearReader, f: Features) -> np.ndarray:
    return linear_logits(linear.tfidf(), linear.coef, linear.intercept, f.texts, f.mean)


def _fit_linear(
    fit: Features, y: np.ndarray, classes: int, c: float, chars: tuple[int, int] | None
) -> _LinearReader:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizers = [tfidf_vectorizer(len(fit.texts), 50000)]
    if chars is not None:
        vectorizers.append(
            TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=chars,
                min_df=2,
                sublinear_tf=True,
                max_features=CHAR_FEATURES,
            )
        )
    x = linear_matrix([v.fit_transform(fit.texts) for v in vectorizers], fit.mean)
    model = LogisticRegression(C=c, max_iter=3000)
    model.fit(x, y)
    coef, intercept = classifier_arrays(model, classes, x.shape[1])
    blocks = [
        ({term: int(i) for term, i in v.vocabulary_.items()}, v.idf_.astype(np.float32))
        for v in vectorizers
    ]
    return _LinearReader(blocks, chars, coef, intercept)


def _temperature(logits: np.ndarray, y: np.ndarray) -> float:
    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    return float(min(TEMPERATURES, key=nll))


def _threshold(probs: np.ndarray, y: np.ndarray, names: Sequence[str]) -> float:
    """The threshold whose multi-label picks best match the labels (micro-F1)."""

    def f1(t: float) -> float:
        tp = fp = 0
        for row, gold in zip(probs, y, strict=True):
            chosen = {name for name, _ in picked(row, names, t)}
            tp += names[gold] in chosen
            fp += len(chosen - {names[gold]})
        fn = len(y) - tp
        return 2 * tp / max(1, 2 * tp + fp + fn)

    return float(max(THRESHOLDS, key=f1))


def train_topic_model(
    settings: Settings, data: Path, *, text_col: str = "text", label_col: str = "label"
) -> TopicTrainResult:
    """Fit a topic classifier on a user's CSV into ``<data dir>/models/topics``."""
    if not data.is_file():
        raise ConfigError(f"training data {data} does not exist", hint="pass an existing CSV")
    with data.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        require_columns(data, reader, text_col, label_col)
        rows = [(r[text_col] or "", (r[label_col] or "").strip()) for r in reader]
    rows = [(t, label) for t, label in rows if label]
    if len({label for _, label in rows}) < 2:
        raise ConfigError(f"{data}: needs at least two different topics to learn from")
    folder = DataLayout(settings.data_dir).models / "topics"
    return fit_topic_model(
        [t for t, _ in rows],
        [label for _, label in rows],
        folder,
        cache_dir=settings.cache_dir,
        source=str(data),
    )
