"""Sentiment per ticker (or per named entity) when one text names several companies.

"Apple's profit rose while Intel's revenue fell" is good news for AAPL and bad for INTC;
the text's overall score is neither. The text is cut into clauses (sentences, ";", commas
and joins such as "while", "but", "and"); each ticker gets the clauses that name it, plus the
clauses after it that name no company (they continue its story), and those are scored
together. A fragment that is little more than a name ("Both Goldman Sachs and ...") joins
the next clause, so a shared verb stays shared. Where the clauses cannot tell the tickers
apart, every ticker keeps the text's own sentiment.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Protocol

from monitor.sentiment.base import Sentiment, SentimentScorer

_CLAUSE_RE = re.compile(
    r"(?<=[.!?;])\s+|;\s*|,?\s+\b(?:while|whereas|but|and|although|though|however|yet)\b\s+"
    r"|,\s+",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[A-Za-z]{2,}")
MIN_OWN_WORDS = 2  # a clause needs this many words besides names to stand on its own


class Mentions(Protocol):
    """What finds the targets in a clause: the ticker extractor, or a text's own entities.
    ``among``: the targets already found in the whole text (a clause lacks its context)."""

    def extract(self, text: str, among: Collection[str] = ()) -> list[str]: ...

    def names_in(self, text: str, among: Collection[str] = ()) -> list[str]: ...


class NamedEntities:
    """Targets given by name (an annotated data set's entities): found case-insensitively."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(dict.fromkeys(n for n in names if n.strip()))
        self._patterns = [
            (n, re.compile(r"(?<!\w)" + re.escape(n) + r"(?:'s)?(?!\w)", re.IGNORECASE))
            for n in self.names
        ]

    def extract(self, text: str, among: Collection[str] = ()) -> list[str]:
        hits = [(m.start(), -len(n), n) for n, p in self._patterns if (m := p.search(text))]
        return [n for _, _, n in sorted(hits)]

    def names_in(self, text: str, among: Collection[str] = ()) -> list[str]:
        return [m.group(0) for _, p in self._patterns for m in p.finditer(text)]


def ticker_clauses(text: str, tickers: Sequence[str], extractor: Mentions) -> dict[str, str | None]:
    """For one text: the text each ticker is scored on (None: the whole text's score)."""
    if len(tickers) < 2:
        return dict.fromkeys(tickers)
    clauses = _merge_fragments(
        [c for c in _CLAUSE_RE.split(text) if c and c.strip()], extractor, tickers
    )
    owned: dict[str, list[str]] = {t: [] for t in tickers}
    current: list[str] = []
    for clause in clauses:
        named = [t for t in extractor.extract(clause, tickers) if t in owned]
        if named:
            current = named
        for ticker in current:
            owned[ticker].append(clause)
    parts = {t: " ".join(c).strip() or None for t, c in owned.items()}
    if len(set(parts.values())) < 2:  # nothing tells them apart
        return dict.fromkeys(tickers)
    return parts


def _merge_fragments(
    clauses: list[str], extractor: Mentions, among: Collection[str] = ()
) -> list[str]:
    merged: list[str] = []
    carry = ""
    for position, clause in enumerate(clauses):
        clause = f"{carry} {clause}" if carry else clause
        carry = ""
        names = " ".join(extractor.names_in(clause, among))
        own_words = len(_WORD_RE.findall(clause)) - len(_WORD_RE.findall(names))
        if own_words < MIN_OWN_WORDS and position < len(clauses) - 1:
            carry = clause
            continue
        merged.append(clause)
    return merged


def score_per_ticker(
    texts: Sequence[str],
    tickers: Sequence[Sequence[str]],
    overall: Sequence[Sentiment],
    scorer: SentimentScorer,
    extractor: Mentions,
) -> list[dict[str, Sentiment]]:
    """Each text's tickers with their sentiment; clauses of the whole batch in one call."""
    plans = [ticker_clauses(t, k, extractor) for t, k in zip(texts, tickers, strict=True)]
    return _score_plans(plans, overall, scorer)


def score_per_entity(
    texts: Sequence[str],
    entities: Sequence[Sequence[str]],
    overall: Sequence[Sentiment],
    scorer: SentimentScorer,
) -> list[dict[str, Sentiment]]:
    """The same for entities given by name per text (an annotated set's targets)."""
    plans = []
    for text, names in zip(texts, entities, strict=True):
        found = NamedEntities(names)
        plan = ticker_clauses(text, found.names, found)
        plans.append({n: plan.get(n) for n in names})
    return _score_plans(plans, overall, scorer)


def _score_plans(
    plans: Sequence[dict[str, str | None]], overall: Sequence[Sentiment], scorer: SentimentScorer
) -> list[dict[str, Sentiment]]:
    wanted = sorted({c for plan in plans for c in plan.values() if c})
    scored = dict(zip(wanted, scorer.score(wanted), strict=True)) if wanted else {}
    return [
        {t: scored[c] if c else whole for t, c in plan.items()}
        for plan, whole in zip(plans, overall, strict=True)
    ]
