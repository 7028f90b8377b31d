"""`simmim train-sentiment`: a light classifier fitted on a user's own labelled texts.

TF-IDF word and bigram features plus the finance rules' evidence and VADER's compound,
into a multinomial logistic regression. Saved as JSON + NumPy arrays (no pickle), so a
model file from elsewhere cannot run code when loaded.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, hstack

from monitor.sentiment.base import LABELS, Label, Sentiment
from monitor.sentiment.finance import FinanceSentiment
from monitor.sentiment.metrics import classification_report
from monitor.sentiment.splits import holdout_mask
from simmim.errors import ConfigError

MODEL_FILE = "sentiment.json"
ARRAYS_FILE = "sentiment.npz"


@dataclass
class TrainResult:
    folder: Path
    n_train: int
    n_holdout: int
    holdout: dict[str, object]
    held_out: list[int] = field(default_factory=list)  # indices of the texts kept aside


def read_domains(path: Path, domain_col: str) -> list[str] | None:
    """The domain of each row (``news``, ``posts``…) when the file has that column."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if domain_col not in (reader.fieldnames or ()):
            return None
        return [(row[domain_col] or "").strip() or "unnamed" for row in reader]


def require_columns(path: Path, reader: csv.DictReader[str], *columns: str) -> None:
    missing = set(columns) - set(reader.fieldnames or ())
    if missing:
        raise ConfigError(
            f"{path} has no column(s) {', '.join(sorted(missing))} "
            f"(it has {', '.join(reader.fieldnames or [])})",
            hint="name them with --text-col / --label-col",
        )


def read_labelled_csv(
    path: Path, *, text_col: str, label_col: str, label_map: dict[str, str]
) -> tuple[list[str], list[str]]:
    if not path.is_file():
        raise ConfigError(f"training data {path} does not exist", hint="pass an existing CSV")
    texts: list[str] = []
    labels: list[str] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        require_columns(path, reader, text_col, label_col)
        for line, row in enumerate(reader, start=2):
            raw = (row[label_col] or "").strip()
            label = label_map.get(raw, raw).lower()
            if label not in LABELS:
                raise ConfigError(
                    f"{path} line {line}: label {raw!r} is not negative/neutral/positive",
                    hint="map your labels, e.g. --label-map 0=negative,1=positive,2=neutral",
                )
            texts.append(row[text_col] or "")
            labels.append(label)
    if len(set(labels)) < 2:
        raise ConfigError(f"{path}: needs at least two different labels to learn from")
    return texts, labels


class _Features:
    def __init__(self, rules: FinanceSentiment) -> None:
        self.rules = rules

    def dense(self, texts: Sequence[str]) -> np.ndarray:
        readings = [self.rules.evidence(t) for t in texts]
        return np.array([[np.tanh(e.total), e.vader] for e in readings], np.float64)


def train(
    texts: list[str], labels: list[str], folder: Path, *, holdout: float = 0.15
) -> TrainResult:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    held = holdout_mask(texts, holdout) if len(texts) >= 20 else np.zeros(len(texts), bool)
    train_idx, test_idx = np.flatnonzero(~held), np.flatnonzero(held)
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50000
    )
    features = _Features(FinanceSentiment())

    def matrix(idx: np.ndarray, fit: bool = False) -> csr_matrix:
        chosen = [texts[i] for i in idx]
        sparse = vectorizer.fit_transform(chosen) if fit else vectorizer.transform(chosen)
        return hstack([sparse, csr_matrix(features.dense(chosen) * 3.0)]).tocsr()

    x_train = matrix(train_idx, fit=True)
    classifier = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced")
    classifier.fit(x_train, [labels[i] for i in train_idx])

    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = {term: int(index) for term, index in vectorizer.vocabulary_.items()}
    (folder / MODEL_FILE).write_text(
        json.dumps({"vocabulary": vocabulary, "classes": list(classifier.classes_), "version": 1}),
        encoding="utf-8",
    )
    np.savez(
        folder / ARRAYS_FILE,
        idf=vectorizer.idf_,
        coef=classifier.coef_,
        intercept=classifier.intercept_,
    )
    report: dict[str, object] = {}
    if len(test_idx):
        model = LearnedSentiment(folder)
        predicted = [s.label for s in model.score([texts[i] for i in test_idx])]
        report = classification_report([labels[i] for i in test_idx], predicted)
    return TrainResult(folder, len(train_idx), len(test_idx), report, test_idx.tolist())


class LearnedSentiment:
    name = "learned"

    def __init__(self, folder: Path) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        meta_path, arrays_path = folder / MODEL_FILE, folder / ARRAYS_FILE
        if not meta_path.is_file() or not arrays_path.is_file():
            raise ConfigError(
                f"no trained sentiment model in {folder}",
                hint="run `simmim train-sentiment --data labelled.csv` first",
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        arrays = np.load(arrays_path, allow_pickle=False)
        self._vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, vocabulary=meta["vocabulary"]
        )
        self._vectorizer.idf_ = arrays["idf"]
        self._coef, self._intercept = arrays["coef"], arrays["intercept"]
        self._classes: list[Label] = meta["classes"]
        self._features = _Features(FinanceSentiment())
        self.version = f"{int(arrays_path.stat().st_mtime)}"

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        if not texts:
            return []
        x = hstack(
            [
                self._vectorizer.transform(list(texts)),
                csr_matrix(self._features.dense(texts) * 3.0),
            ]
        ).tocsr()
        logits = np.asarray(x @ self._coef.T) + self._intercept
        if len(self._classes) == 2 and logits.shape[1] == 1:  # binary LR keeps one column
            logits = np.hstack([-logits / 2, logits / 2])
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        column = {label: i for i, label in enumerate(self._classes)}
        out = []
        for row in probs:
            best = int(row.argmax())
            pos = row[column["positive"]] if "positive" in column else 0.0
            neg = row[column["negative"]] if "negative" in column else 0.0
            out.append(Sentiment(self._classes[best], float(pos - neg), float(row[best])))
        return out
