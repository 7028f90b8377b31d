"""Sentiment across domains: the held-out split, worst-domain choices, per-entity scoring,
and the shipped default on news-style business events it must read right.

Every sentence here was written for these tests; none comes from a published data set.
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor.sentiment.base import LABELS, Sentiment
from monitor.sentiment.finance_model import FinanceModelSentiment
from monitor.sentiment.per_ticker import NamedEntities, score_per_entity, ticker_clauses
from monitor.sentiment.splits import compare_per_domain, holdout_mask
from monitor.train.finance_training import WorstDomain, domain_weights, fit_finance_model
from simmim.settings import Settings


@pytest.fixture(scope="module")
def model() -> FinanceModelSentiment:
    return FinanceModelSentiment(cache_dir=Settings().cache_dir)


def test_holdout_is_by_content_not_by_order() -> None:
    texts = [f"Company {i} reports quarterly results" for i in range(400)]
    mask = holdout_mask(texts, 0.15)
    assert 0.08 < mask.mean() < 0.22
    reordered = holdout_mask(texts[::-1], 0.15)[::-1]
    assert (mask == reordered).all()
    # A near-repeat (case, punctuation, a link) falls on the same side as its original.
    variants = [t.upper() + "!! https://t.co/x" for t in texts]
    assert (holdout_mask(variants, 0.15) == mask).all()


def test_choices_follow_the_worst_domain_not_the_mean() -> None:
    y = np.array([0, 1, 2] * 4)
    domain = np.array(["posts"] * 6 + ["news"] * 6)
    judge = WorstDomain(y, domain)
    right = np.eye(3)[y]
    # All posts right, half the news wrong: the worst (news) decides, the mean breaks ties.
    half_news_wrong = right.copy()
    half_news_wrong[[6, 7, 8]] = np.eye(3)[[1, 2, 0]]
    worst, mean = judge.score(half_news_wrong)
    assert worst < mean <= 1.0
    assert worst == min(judge.macro_f1s(half_news_wrong.argmax(1)))
    assert judge.score(right) == (1.0, 1.0)


def test_a_small_domain_is_weighted_up_but_not_to_parity() -> None:
    weights = domain_weights(np.array(["big"] * 900 + ["small"] * 100))
    big, small = weights[0], weights[-1]
    assert small / big == pytest.approx(3.0, rel=1e-5)  # sqrt(900 / 100)
    assert weights.mean() == pytest.approx(1.0, rel=1e-5)


def _two_domain_texts() -> tuple[list[str], list[str], list[str]]:
    texts, labels, domains = [], [], []
    posts = {
        "positive": ["to the moon 🚀 ${t}", "loading up on ${t}, love it", "${t} ripping higher"],
        "negative": ["${t} dumping hard 😩", "sold all my ${t}, terrible", "${t} bleeding again"],
        "neutral": ["anyone watching ${t} today?", "${t} earnings on thursday", "${t} chart"],
    }
    news = {
        "positive": [
            "{t} wins a large supply contract",
            "{t} swings to a quarterly profit",
            "{t} signs a distribution agreement",
        ],
        "negative": [
            "{t} issues a profit warning",
            "{t} cuts jobs as orders slump",
            "{t} misses revenue estimates",
        ],
        "neutral": [
            "{t} to hold its annual meeting in May",
            "{t} appoints a new board member",
            "{t} publishes its interim report",
        ],
    }
    for i in range(30):
        name = f"Corp{i}"
        for kind, table in (("posts", posts), ("news", news)):
            for label, patterns in table.items():
                for pattern in patterns:
                    texts.append(pattern.format(t=name) + f" {i}")
                    labels.append(label)
                    domains.append(kind)
    return texts, labels, domains


def test_fit_reports_every_domain_and_compares_with_the_shipped_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    texts, labels, domains = _two_domain_texts()
    result = fit_finance_model(
        texts, labels, tmp_path / "m", domains=domains, cache_dir=Settings().cache_dir, epochs=3
    )
    assert set(result.domains) == {"posts", "news"}
    for figures in result.domains.values():
        assert {"accuracy", "macro_f1", "ece", "n"} <= set(figures)
        assert figures["macro_f1"] >= 0.9, result.domains  # type: ignore[operator]
    held = result.held_out
    assert held and set(held).isdisjoint(set(range(len(texts))) - set(held))
    trained = FinanceModelSentiment(tmp_path / "m", cache_dir=Settings().cache_dir)
    rows = compare_per_domain(
        trained,
        FinanceModelSentiment(cache_dir=Settings().cache_dir),
        [texts[i] for i in held],
        [labels[i] for i in held],
        [domains[i] for i in held],
    )
    assert rows[0]["domain"] == "all" and {r["domain"] for r in rows[1:]} == {"posts", "news"}
    for row in rows:
        assert row["better"] == (row["new"] > row["shipped"])  # type: ignore[operator]


def test_named_entities_are_found_whole_and_in_any_case() -> None:
    found = NamedEntities(["Tata Steel", "Tata", "SBI"])
    assert found.extract("tata steel gains; SBI's profit falls") == ["Tata Steel", "Tata", "SBI"]
    assert found.extract("Sbin slips") == []  # not part of a word
    assert "SBI's" in found.names_in("SBI's profit falls")


def test_per_entity_sentiment_gives_each_company_its_own_label() -> None:
    class ByWords:
        name, version = "words", "1"

        def score(self, texts):  # type: ignore[no-untyped-def]
            out = []
            for text in texts:
                low = text.lower()
                if "jump" in low or "win" in low:
                    out.append(Sentiment("positive", 0.8, 0.9))
                elif "slump" in low or "loss" in low:
                    out.append(Sentiment("negative", -0.8, 0.9))
                else:
                    out.append(Sentiment("neutral", 0.0, 0.9))
            return out

    texts = [
        "Harbor Foods shares jump on record orders while Kelpie Mills slump on a wider loss",
        "Harbor Foods and Kelpie Mills both win state contracts",
    ]
    entities = [["Harbor Foods", "Kelpie Mills"], ["Harbor Foods", "Kelpie Mills"]]
    scorer = ByWords()
    per = score_per_entity(texts, entities, scorer.score(texts), scorer)
    assert per[0]["Harbor Foods"].label == "positive"
    assert per[0]["Kelpie Mills"].label == "negative"
    assert {s.label for s in per[1].values()} == {"positive"}  # shared news stays shared
    plan = ticker_clauses(texts[1], entities[1], NamedEntities(entities[1]))
    assert plan == {"Harbor Foods": None, "Kelpie Mills": None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # business events told in news style: what the tweets alone taught the model to miss
        (
            "Brantley Marine has won an order worth EUR 28 million to deliver two ferries.",
            "positive",
        ),
        (
            "Ostrava Rail signed a five-year service agreement with the national operator.",
            "positive",
        ),
        ("The restructuring will bring annual cost savings of about USD 40 million.", "positive"),
        (
            "Quillon Steel turned to an operating profit of EUR 3.2 mn from a loss of EUR 1.1 mn.",
            "positive",
        ),
        ("Fenmore Bank swings to a loss as bad loans pile up", "negative"),
        ("Larkspur Mining to cut 600 jobs after the mine closure", "negative"),
        ("Shares of Tidewell Pharma slump 18% as trial fails", "negative"),
        ("Delmar Textiles to announce third-quarter results on October 24", "neutral"),
        ("Ridgeway Insurance appoints Maria Osei as chief financial officer", "neutral"),
    ],
)
def test_news_style_business_events(model: FinanceModelSentiment, text: str, expected: str) -> None:
    [result] = model.score([text])
    assert result.label == expected, result


def test_confidence_is_a_probability_on_posts_and_headlines_alike(
    model: FinanceModelSentiment,
) -> None:
    texts = ["$ABC ripping 🚀", "Profit jumps 40% on record orders", "Board meeting on Monday"]
    probs = model.probabilities(texts)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert probs.shape == (3, len(LABELS))
    meta = model.meta["trained"]
    assert {"twitter_financial_news", "sentfin", "finentity"} <= set(meta["domains"])
    for figures in meta["domains"].values():  # each domain's held-out part, as shipped
        assert figures["macro_f1"] >= 0.75 and figures["ece"] <= 0.07, meta["domains"]
