"""The default ``finance`` sentiment scorer: news and posts, intensity, calibration, tickers.

The sentences in tests/data were written for these tests (see its README); the scorer never
trained on them.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from monitor.sentiment import make_scorer
from monitor.sentiment.base import Sentiment
from monitor.sentiment.finance_model import FinanceModelSentiment
from monitor.sentiment.metrics import calibration_error, classification_report
from monitor.sentiment.per_ticker import score_per_ticker, ticker_clauses
from monitor.tickers import TickerExtractor
from simmim.settings import Settings

DATA = Path(__file__).parent / "data"


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def model() -> FinanceModelSentiment:
    return FinanceModelSentiment(cache_dir=Settings().cache_dir)


def test_default_scorer_is_finance_and_cached_table_is_reused() -> None:
    settings = Settings()
    assert settings.monitor.sentiment == "finance"
    scorer = make_scorer("finance", cache_dir=settings.cache_dir)
    assert scorer.name == "finance" and len(scorer.version) == 12
    assert list(settings.cache_dir.glob("minilm-static-*.npy")), "the derived table is cached"


def test_news_sentences_no_worse_than_the_rules(model: FinanceModelSentiment) -> None:
    rows = _rows("news_sentences.csv")
    assert len(rows) >= 200
    texts, truth = [r["text"] for r in rows], [r["label"] for r in rows]
    ours = classification_report(truth, [s.label for s in model.score(texts)])
    rules = classification_report(
        truth, [s.label for s in make_scorer("finance-rules").score(texts)]
    )
    assert ours["accuracy"] >= rules["accuracy"] - 0.01, (ours, rules)  # type: ignore[operator]
    assert ours["accuracy"] >= 0.72, ours  # type: ignore[operator]
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for row, result in zip(rows, model.score(texts), strict=True):
        by_kind[row["kind"]].append(row["label"] == result.label)
    for kind in ("comparison", "estimates", "rating", "neutral"):
        assert sum(by_kind[kind]) / len(by_kind[kind]) >= 0.8, (kind, by_kind[kind])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Operating profit rose to EUR 13.1 mn from EUR 8.7 mn.", "positive"),
        ("Net sales decreased to EUR 42.3 mn from EUR 51.0 mn a year earlier.", "negative"),
        ("The company's net loss narrowed to USD 2.1 mn from USD 6.4 mn.", "positive"),
        ("The company raised its full-year revenue guidance.", "positive"),
        ("The company lowered its full-year profit forecast.", "negative"),
        ("Quarterly earnings missed analyst expectations.", "negative"),
        ("Revenue topped Wall Street forecasts by a wide margin.", "positive"),
        ("Barclays downgraded the shares to underweight.", "negative"),
        ("Morgan Stanley upgraded the stock to overweight from equal-weight.", "positive"),
        ("Sales did not increase in the quarter.", "negative"),
        ("The company will publish its interim report on 24 April.", "neutral"),
        ("great, another 20% drop on $XYZ 🙃", "negative"),
        ("$NVDA crushing it today, new ATH 🚀🚀", "positive"),
        ("$TSLA down 8% premarket, ugh 😩", "negative"),
    ],
)
def test_cases_the_scorer_must_get_right(
    model: FinanceModelSentiment, text: str, expected: str
) -> None:
    [result] = model.score([text])
    assert result.label == expected, result


def test_score_is_an_intensity_and_confidence_a_probability(
    model: FinanceModelSentiment,
) -> None:
    texts = [
        "Profit rose slightly.",
        "Profit soared to a record, crushing estimates, and the dividend was doubled.",
        "The company filed for bankruptcy after a fraud probe; shares collapsed 90 %.",
        "",
    ]
    probs = model.probabilities(texts)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    results = model.score(texts)
    for row, result in zip(probs, results, strict=True):
        assert result.score == pytest.approx(row[2] - row[0], abs=1e-6)
        assert result.confidence == pytest.approx(row.max(), abs=1e-6)
    mild, strong, bad, empty = results
    assert strong.score > mild.score > 0 > bad.score
    assert bad.score < -0.8 and empty.label == "neutral"


def test_calibration_error_matches_a_hand_computation() -> None:
    # bin 0.5-0.6: confidences 0.55, 0.55 with one right → |0.55 - 0.5| × 2/4
    # bin 0.9-1.0: confidences 0.95, 0.95 both right → |0.95 - 1.0| × 2/4
    report = calibration_error([0.55, 0.55, 0.95, 0.95], [True, False, True, True])
    assert report["ece"] == pytest.approx(0.05 * 0.5 + 0.05 * 0.5)
    assert [b["n"] for b in report["reliability"]] == [2, 2]  # type: ignore[index]


def test_per_ticker_sentiment_follows_the_clause_about_each_company(
    model: FinanceModelSentiment,
) -> None:
    rows = _rows("ticker_sentences.csv")
    extractor = TickerExtractor()
    texts = sorted({r["text"] for r in rows})
    tickers = [extractor.extract(t) for t in texts]
    per = score_per_ticker(texts, tickers, model.score(texts), model, extractor)
    found = dict(zip(texts, per, strict=True))
    wrong = [
        (r["text"], r["ticker"], found[r["text"]][r["ticker"]].label)
        for r in rows
        if found[r["text"]][r["ticker"]].label != r["label"]
    ]
    assert not wrong


def test_ticker_clauses_keep_shared_news_shared() -> None:
    extractor = TickerExtractor()
    shared = "Both Goldman Sachs and Morgan Stanley beat estimates on strong trading revenue."
    assert ticker_clauses(shared, ["GS", "MS"], extractor) == {"GS": None, "MS": None}
    split = ticker_clauses(
        "Apple's profit rose 12 % while Intel's revenue fell 20 %.", ["AAPL", "INTC"], extractor
    )
    assert split == {"AAPL": "Apple's profit rose 12 %", "INTC": "Intel's revenue fell 20 %."}
    assert ticker_clauses("$AAPL up", ["AAPL"], extractor) == {"AAPL": None}


def test_per_ticker_falls_back_to_the_whole_text() -> None:
    class Fixed:
        name, version = "fixed", "1"

        def score(self, texts):  # type: ignore[no-untyped-def]
            return [Sentiment("positive", 0.5, 0.9) for _ in texts]

    whole = Sentiment("negative", -0.7, 0.8)
    [result] = score_per_ticker(
        ["Apple and Microsoft"], [["AAPL", "MSFT"]], [whole], Fixed(), TickerExtractor()
    )
    assert result == {"AAPL": whole, "MSFT": whole}


def test_own_tfidf_transform_equals_scikit_learns(model: FinanceModelSentiment) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    reference = TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, vocabulary=model._linear.vectorizer.vocabulary
    )
    reference.idf_ = model._linear.vectorizer.idf
    texts = [r["text"] for r in _rows("news_sentences.csv")] + ["", "Ünïcode café $AAPL 🚀 up up"]
    ours = model._linear.vectorizer.transform(texts)
    np.testing.assert_allclose(ours.toarray(), reference.transform(texts).toarray(), atol=1e-9)


def test_a_broken_model_folder_is_an_actionable_error(tmp_path: Path) -> None:
    from simmim.errors import ConfigError

    with pytest.raises(ConfigError, match="no finance sentiment model"):
        make_scorer("finance", model=tmp_path, cache_dir=Settings().cache_dir)
    (tmp_path / "finance.json").write_text("{}", encoding="utf-8")
    (tmp_path / "finance.npz").write_bytes(b"not numpy")
    with pytest.raises(ConfigError, match="no usable finance sentiment model"):
        make_scorer("finance", model=tmp_path, cache_dir=Settings().cache_dir)


@pytest.mark.parametrize("chars", [(3, 5), (2, 5), (1, 1)])
def test_own_letters_tfidf_equals_scikit_learns_char_wb(chars: tuple[int, int]) -> None:
    """The topic model's letters reader replays ``analyzer="char_wb"``: short words whole,
    runs of spaces, accents and emoji included."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from monitor.sentiment.finance_model import Tfidf

    texts = [r["text"] for r in _rows("news_sentences.csv")] + [
        "",
        "a  I go\tto\n\nthe Börse",
        "Ünïcode café $AAPL 🚀 up up",
    ]
    fitted = TfidfVectorizer(analyzer="char_wb", ngram_range=chars, sublinear_tf=True).fit(texts)
    ours = Tfidf({g: int(i) for g, i in fitted.vocabulary_.items()}, fitted.idf_, chars=chars)
    np.testing.assert_allclose(
        ours.transform(texts).toarray(), fitted.transform(texts).toarray(), atol=1e-9
    )
