"""The back-end calls behind `simmim topics list|add` (and the API, the dashboard);
`simmim topics train` is ``monitor.train.topic_training.train_topic_model``.

Event topics a user adds live in ``<data dir>/topics.json`` beside the settings' own
(``monitor.topics``); one with the same name replaces the settings' one. A trained
classifier lives in ``<data dir>/models/topics`` and is put in use with
``SIMMIM_MONITOR__TOPIC_MODEL``. Either way `simmim monitor rescore` re-tags old items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from monitor.sentiment.token_vectors import shared_token_vectors
from monitor.topic_model import TopicClassifier
from monitor.topics import TopicScorer
from simmim.errors import ConfigError
from simmim.files import atomic_write_bytes
from simmim.paths import DataLayout
from simmim.settings import Settings
from simmim.topic_defaults import TopicSpec

USER_TOPICS = "topics.json"


@dataclass(frozen=True)
class TopicInfo:
    name: str
    kind: str  # taxonomy (the classifier's) | event
    source: str  # model | settings | user
    prompts: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    examples: int = 0


def user_topics_file(settings: Settings) -> Path:
    return DataLayout(settings.data_dir).root / USER_TOPICS


def user_topics(settings: Settings) -> list[TopicSpec]:
    path = user_topics_file(settings)
    if not path.is_file():
        return []
    try:
        return [TopicSpec(**raw) for raw in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError, ValidationError) as exc:
        raise ConfigError(
            f"{path} holds no usable topics ({exc})",
            hint="fix or delete the file, then add topics again with `simmim topics add`",
        ) from exc


def event_topics(settings: Settings) -> list[TopicSpec]:
    """The settings' event topics with the user's added ones (same name: the user's)."""
    mine = user_topics(settings)
    names = {t.name for t in mine}
    return [t for t in settings.monitor.topics if t.name not in names] + mine


def list_topics(settings: Settings) -> list[TopicInfo]:
    out = []
    if (settings.monitor.topic_model or "").lower() != "none":
        folder = Path(settings.monitor.topic_model) if settings.monitor.topic_model else None
        classifier = TopicClassifier(folder, cache_dir=settings.cache_dir)
        out += [TopicInfo(name, "taxonomy", "model") for name in classifier.names]
    user = {t.name for t in user_topics(settings)}
    for topic in event_topics(settings):
        out.append(
            TopicInfo(
                topic.name,
                "event",
                "user" if topic.name in user else "settings",
                tuple(topic.prompts),
                tuple(topic.keywords),
                len(topic.examples),
            )
        )
    return out


@dataclass(frozen=True)
class AddedTopic:
    spec: TopicSpec
    recognised: int  # of its examples, each held out in turn
    examples: int


def add_event_topic(settings: Settings, spec: TopicSpec) -> AddedTopic:
    """Save an event topic and measure it: each example, held out in turn, is scored against
    the topic made from the others (and every other topic): how many it recognises."""
    recognised = 0
    if len(spec.examples) >= 2:
        tokens = shared_token_vectors(None, settings.cache_dir)
        others = [t for t in event_topics(settings) if t.name != spec.name]
        for i, example in enumerate(spec.examples):
            rest = spec.model_copy(update={"examples": spec.examples[:i] + spec.examples[i + 1 :]})
            scorer = TopicScorer.build(
                [*others, rest], None, threshold=settings.monitor.topic_threshold, tokens=tokens
            )
            recognised += spec.name in {h.name for h in scorer.score([example])[0]}
    mine = [t for t in user_topics(settings) if t.name != spec.name] + [spec]
    atomic_write_bytes(
        user_topics_file(settings),
        json.dumps([t.model_dump() for t in mine], indent=1).encode(),
    )
    return AddedTopic(spec, recognised, len(spec.examples))
