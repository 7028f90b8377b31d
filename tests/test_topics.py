"""Topics: the trained taxonomy classifier, event topics (never one keyword alone), a user's
own topics and classifier. Every text here was written for these tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.sentiment.token_vectors import shared_token_vectors
from monitor.topic_admin import add_event_topic, event_topics, list_topics
from monitor.topic_model import MAX_TOPICS, TopicClassifier
from monitor.topics import TopicScorer
from monitor.train.topic_training import fit_topic_model, topic_report, train_topic_model
from simmim.settings import Settings
from simmim.topic_defaults import DEFAULT_TOPICS, TopicSpec


@pytest.fixture(scope="module")
def tokens():  # type: ignore[no-untyped-def]
    return shared_token_vectors(None, Settings().cache_dir)


@pytest.fixture(scope="module")
def shipped(tokens) -> TopicClassifier:  # type: ignore[no-untyped-def]
    return TopicClassifier(tokens=tokens)


def test_one_keyword_alone_is_no_topic(tokens) -> None:  # type: ignore[no-untyped-def]
    words_only = TopicScorer.keywords_only(DEFAULT_TOPICS)
    assert words_only.score(["The ship left the port"])[0] == []  # "port"? not a keyword
    assert words_only.score(["Bitcoin is up"])[0] == []  # one hit: 0.35
    assert [h.name for h in words_only.score(["Bitcoin and ether: crypto rally"])[0]] == ["crypto"]
    with_text = TopicScorer.build(DEFAULT_TOPICS, None, tokens=tokens)
    names = [h.name for h in with_text.score(["The bank announced layoffs of 2,000 workers"])[0]]
    assert names[:1] == ["layoffs"]  # one keyword plus what the words mean
    assert with_text.score(["Lovely weather in the park today"])[0] == []


def test_shipped_classifier_reads_the_taxonomy(shipped: TopicClassifier) -> None:
    assert len(shipped.names) == 20 and "Fed | Central Banks" in shipped.names
    texts = [
        "The central bank raised its policy rate by 50 basis points to fight inflation",
        "Kestrel Foods declares a quarterly dividend of 42 cents per share",
        "Brent crude jumps 4% after OPEC+ agrees deeper output cuts",
        "Harbor Tech names a new chief financial officer effective next month",
    ]
    expected = ["Fed | Central Banks", "Dividend", "Energy | Oil", "Personnel Change"]
    probs = shipped.probabilities(texts)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert [shipped.names[i] for i in probs.argmax(1)] == expected
    for picks in shipped.topics(texts):
        assert 1 <= len(picks) <= MAX_TOPICS and picks == sorted(picks, key=lambda p: -p[1])
    report = shipped.meta["trained"]["report"]
    assert report["accuracy"] >= 0.8 and report["kept_aside"] > 2000


def test_fit_keeps_a_fifth_aside_and_calibrates(tmp_path: Path, tokens) -> None:  # type: ignore[no-untyped-def]
    kinds = {
        "weather": ["rain and storms hit {c}", "a heatwave bakes {c}", "snow closes roads in {c}"],
        "sport": ["{c} wins the cup final", "{c} striker scores twice", "{c} signs a goalkeeper"],
        "food": ["{c} opens a bakery", "a new ramen bar in {c}", "{c} chefs praise local cheese"],
    }
    texts, labels = [], []
    for i in range(40):
        for label, patterns in kinds.items():
            for p in patterns:
                texts.append(p.format(c=f"Town{i}"))
                labels.append(label)
    result = fit_topic_model(texts, labels, tmp_path / "t", tokens=tokens, epochs=3)
    assert result.n_holdout > 30 and result.report["accuracy"] >= 0.9  # type: ignore[operator]
    model = TopicClassifier(tmp_path / "t", tokens=tokens)
    assert model.names == ["food", "sport", "weather"]
    assert model.topics(["rain and storms hit Oslo"])[0][0][0] == "weather"


def test_topic_report_per_topic() -> None:
    report = topic_report(["a", "a", "b"], ["a", "b", "b"], ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["topics"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "n": 2}  # type: ignore[index]
    assert "c" not in report["topics"]  # type: ignore[operator]


def test_a_user_topic_is_added_measured_and_listed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    spec = TopicSpec(
        name="shipping strikes",
        prompts=["dock workers strike at a port", "a strike halts container shipping"],
        keywords=["dockworkers", "port strike", "walkout"],
        examples=[
            "Dockworkers walk out at three ports, halting container traffic",
            "A port strike leaves ships waiting off the coast for a week",
            "Union calls a walkout at the container terminal over pay",
        ],
    )
    added = add_event_topic(settings, spec)
    assert added.examples == 3 and added.recognised >= 2
    assert "shipping strikes" in [t.name for t in event_topics(settings)]
    listed = {t.name: t for t in list_topics(settings)}
    assert listed["shipping strikes"].source == "user" and listed["layoffs"].kind == "event"
    assert listed["Dividend"].kind == "taxonomy"


def test_train_topic_model_needs_two_topics(tmp_path: Path) -> None:
    from simmim.errors import ConfigError

    data = tmp_path / "one.csv"
    data.write_text("text,label\nhello,a\nworld,a\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="two different topics"):
        train_topic_model(Settings(data_dir=tmp_path), data)
    data.write_text("body,topic\nhello,a\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no column"):
        train_topic_model(Settings(data_dir=tmp_path), data)
