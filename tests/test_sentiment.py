"""The default finance sentiment scorer on hand-written cases it must get right."""

from __future__ import annotations

import pytest

from monitor.sentiment import make_scorer
from monitor.sentiment.finance import FinanceSentiment, tokenize
from monitor.sentiment.metrics import classification_report

CASES = [
    # direction × what moved
    (
        "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period.",
        "positive",
    ),
    ("Net sales decreased by 5 % to EUR 210 million.", "negative"),
    ("The company's net loss narrowed to EUR 1.2 million.", "positive"),
    ("Pre-tax loss widened to EUR 4.5 mn from EUR 2.1 mn.", "negative"),
    ("Costs fell 8 % thanks to the restructuring.", "positive"),
    ("Profit fell sharply in the third quarter.", "negative"),
    ("Debt rose to EUR 900 million at the end of the year.", "negative"),
    ("The group cut costs by EUR 30 million.", "positive"),
    ("The company cut its full-year guidance.", "negative"),
    ("Acme raised its dividend by 10 %.", "positive"),
    ("Peloton stock plummets after the company reports widening loss, slowing revenue", "negative"),
    ("Rising costs weighed on the quarter.", "negative"),
    # comparisons without a direction verb
    ("Operating profit totalled EUR 5.2 mn, compared to EUR 3.1 mn a year earlier.", "positive"),
    ("Net sales totalled EUR 95 mn compared with EUR 120 mn in 2007.", "negative"),
    # negation and hedging
    ("Revenue did not increase in the period.", "negative"),
    ("The company said sales did not fall despite the strike.", "positive"),
    ("There was no improvement in margins.", "negative"),
    # words with their own polarity
    ("The lender filed for bankruptcy protection on Monday.", "negative"),
    ("Analysts upgraded the stock to outperform.", "positive"),
    ("The firm won a EUR 40 million contract from the Finnish navy.", "positive"),
    ("The regulator fined the bank for the data breach.", "negative"),
    ("The company posted a net loss of EUR 2 million.", "negative"),
    ("Acme swung to a profit in the second quarter.", "positive"),
    # neutral: descriptions, announcements
    ("The company is headquartered in Helsinki and employs 1,200 people.", "neutral"),
    ("The annual general meeting will be held on 15 March.", "neutral"),
    ("Acme Corp reports Q2 results", "neutral"),
    ("The new plant will produce packaging materials for the food industry.", "neutral"),
    ("The shares will be listed on the Nasdaq Helsinki exchange.", "neutral"),
    # social text
    ("$ACME love the news, loading up 🚀🚀", "positive"),
    ("$ACME getting crushed today, terrible guidance", "negative"),
    ("+3% on Q4 beat", "positive"),
]


@pytest.fixture(scope="module")
def scorer() -> FinanceSentiment:
    return FinanceSentiment()


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_finance_cases(scorer: FinanceSentiment, text: str, expected: str) -> None:
    result = scorer.score([text])[0]
    assert result.label == expected, f"{text!r}: evidence {scorer.raw(text):.2f}"
    assert -1.0 <= result.score <= 1.0 and 0.5 <= result.confidence <= 1.0
    if expected != "neutral":
        assert (result.score > 0) == (expected == "positive")


def test_beats_plain_vader_on_the_cases(scorer: FinanceSentiment) -> None:
    truth = [label for _, label in CASES]
    texts = [text for text, _ in CASES]
    ours = classification_report(truth, [s.label for s in scorer.score(texts)])
    vader = classification_report(truth, [s.label for s in make_scorer("vader").score(texts)])
    assert ours["macro_f1"] > vader["macro_f1"] + 0.2  # type: ignore[operator]


def test_phrases_merge_and_numbers_survive() -> None:
    assert tokenize("Net loss narrowed to 1,200.5") == ["net-loss", "narrowed", "to", "1,200.5"]


def test_empty_text_is_neutral(scorer: FinanceSentiment) -> None:
    assert [s.label for s in scorer.score(["", "   "])] == ["neutral", "neutral"]


def _tiny_classifier(folder, favour: int):  # type: ignore[no-untyped-def]
    """A randomly initialised 3-class BERT whose bias strongly favours class ``favour``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "profit", "fell", "rose", "the"]
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=3,
        id2label={0: "positive", 1: "negative", 2: "neutral"},
        label2id={"positive": 0, "negative": 1, "neutral": 2},
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.bias.zero_()
        model.classifier.bias[favour] = 20.0
    model.save_pretrained(folder)
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def test_transformers_backend_maps_the_models_labels(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("transformers", reason="install the dev extra (transformers)")
    negative = make_scorer("transformers", model=_tiny_classifier(tmp_path / "neg", favour=1))
    [result] = negative.score(["the profit fell"])
    assert result.label == "negative" and result.score < -0.99 and result.confidence > 0.99
    positive = make_scorer("transformers", model=_tiny_classifier(tmp_path / "pos", favour=0))
    assert [s.label for s in positive.score(["the profit rose"] * 40)] == ["positive"] * 40


def test_transformers_backend_errors_are_actionable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from simmim.errors import ConfigError

    pytest.importorskip("transformers", reason="install the dev extra (transformers)")
    with pytest.raises(ConfigError, match="cannot load the sentiment model"):
        make_scorer("transformers", model=tmp_path / "missing")
    with pytest.raises(ConfigError, match="needs a model"):
        make_scorer("learned")
