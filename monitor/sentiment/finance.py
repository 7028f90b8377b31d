"""The default sentiment scorer: finance composition rules + a finance lexicon + VADER.

Why not VADER alone: it reads "loss narrowed" as negative and "profit fell" as neutral,
because general-purpose polarity lives in single words while financial polarity lives in
*what moved and which way*. So the core here pairs each direction word (rose, narrowed,
cut) with the nearest metric (profit, loss, costs) and multiplies their signs; "EUR 5m
compared with EUR 3m" is read as a direction too. Lexicon words with a polarity of their
own (bankruptcy, upgrade) add to that, and VADER adds what social text carries (emoji,
slang, "love the news"), weighted up when the text looks like a post rather than a headline.
Negation flips a cue; hedging ("may", "expects") shrinks it. Works offline, ~10k texts/s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.sentiment import lexicon as lx
from monitor.sentiment.base import Sentiment

PAIR_WINDOW = 5  # tokens between a direction word and its metric
NUMBER_WINDOW = 16  # tokens from a metric to the "then" number of a comparison

# Tuned on the training half of a public finance-tweet set (never its validation half).
WEIGHTS = {
    "pair": 1.0,
    "unpaired_direction": 0.5,
    "comparison": 1.0,
    "bare_loss": 0.6,
    "lexicon": 0.55,
    "vader_headline": 0.35,
    "vader_social": 0.6,
    "hedge": 0.6,
    "question": 0.5,
    "sarcasm": 0.6,
}
THRESHOLD = 0.4  # |total| above this leaves neutral

_PHRASE_RE = re.compile(
    r"\b(" + "|".join(re.escape(p) for p in sorted(lx.PHRASES, key=len, reverse=True)) + r")\b"
)
_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)*|[a-z]+(?:[-'][a-z]+)*(?:\.(?=\s|$))?")
_SOCIAL_RE = re.compile(r"\$[A-Za-z]{1,6}\b|@\w|#\w|!!|[\U0001F300-\U0001FAFF\u2600-\u27BF]")
_SIGNED_PCT_RE = re.compile(r"(?<![\w.])([+-])\d+(?:\.\d+)?%")
# Praise a post does not mean: an upside-down face or eye-roll, "/s", set phrases, and a
# sentence opened with "great," / "oh fantastic" about a drop.
_SARCASM_RE = re.compile(
    r"[\U0001F643\U0001F644\U0001F612]|(?<!\w)/s\b|\byeah,? right\b|\bthanks for nothing\b"
    r"|\blove that for (?:us|me)\b|^\s*(?:oh,? )?(?:great|wonderful|fantastic|perfect|sure),"
    r"|\bif you like losing\b|\bwhat could go wrong\b",
    re.IGNORECASE,
)
# "not as bad as feared" is good news; the negation rules alone would read "bad".
_LESS_BAD_RE = re.compile(
    r"\b(?:not|less) (?:as|so)? ?(?:bad|weak|poor|severe|steep|deep|dire|grim)"
    r"(?:er)? (?:as|than) (?:\w+ ){0,3}(?:feared|expected|thought)\b|\bbetter than feared\b"
)
_SPLIT_RE = re.compile(r"\b(?:but|while|whereas|although|though|however)\b|[;:]")


def tokenize(text: str) -> list[str]:
    """Lower-case tokens with known phrases merged ("net loss" → "net-loss")."""
    merged = _PHRASE_RE.sub(lambda m: lx.PHRASES[m.group(1)], text.lower())
    return [t.rstrip(".") if not t[0].isdigit() else t for t in _TOKEN_RE.findall(merged)]


def _number(token: str) -> float | None:
    if not token[0].isdigit():
        return None
    if "," in token and "." not in token:
        head, _, tail = token.rpartition(",")
        token = token.replace(",", "") if len(tail) == 3 else f"{head.replace(',', '')}.{tail}"
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return None


def _metric_sign(token: str) -> int:
    return 1 if token in lx.GOOD_METRICS else -1 if token in lx.BAD_METRICS else 0


@dataclass
class _Clause:
    tokens: list[str]

    def negated(self, i: int, since: int | None = None) -> bool:
        start = max(0, i - 3) if since is None else min(since, max(0, i - 3))
        return any(t in lx.NEGATORS or t.endswith("n't") for t in self.tokens[start:i])

    def hedged(self, i: int) -> bool:
        return any(t in lx.HEDGES for t in self.tokens[max(0, i - 6) : i])


def _clause_score(tokens: list[str]) -> float:
    clause = _Clause(tokens)
    used: set[int] = set()
    total = 0.0
    w = WEIGHTS

    # 1. direction × metric pairs ("profit rose", "cut costs", "loss narrowed")
    for i, token in enumerate(tokens):
        direction = 1 if token in lx.UP else -1 if token in lx.DOWN else 0
        if not direction:
            continue
        lo, hi = max(0, i - PAIR_WINDOW), min(len(tokens), i + PAIR_WINDOW + 1)
        candidates = [j for j in range(lo, hi) if j != i and _metric_sign(tokens[j])]
        if candidates:
            # A verb looks back first ("profit rose"), then ahead ("raised its guidance");
            # an -ing form ahead first ("widening loss", "rising costs").
            ahead_first = token.endswith("ing") and i + 1 in candidates
            j = i + 1 if ahead_first else min(candidates, key=lambda j: abs(i - j) + (j > i) / 2)
            value = w["pair"] * _metric_sign(tokens[j]) * direction
            used.update((i, j))
        else:
            value = w["unpaired_direction"] * direction
            used.add(i)
        if clause.negated(
            i, since=min(candidates, key=lambda j: abs(i - j)) if candidates else None
        ):
            value = -0.8 * value
        if clause.hedged(i):
            value *= w["hedge"]
        total += value

    # 2. "profit totalled EUR 5m compared with EUR 3m" / "sales of 5m, up from 3m"
    for j, token in enumerate(tokens):
        sign = _metric_sign(token)
        if not sign or j in used:
            continue
        window = tokens[j + 1 : j + 1 + NUMBER_WINDOW]
        comparator = next((k for k, t in enumerate(window) if t in lx.COMPARATORS), None)
        if comparator is None:
            continue
        now = [n for t in window[:comparator] if (n := _number(t)) is not None]
        then = [n for t in window[comparator + 1 :] if (n := _number(t)) is not None]
        if now and then and now[-1] != then[0]:
            total += w["comparison"] * sign * (1 if now[-1] > then[0] else -1)
            used.add(j)

    # 3. a loss reported without a direction is bad news ("posted a net loss of EUR 2m")
    for j, token in enumerate(tokens):
        if token in ("net-loss", "losses", "loss") and j not in used:
            total -= w["bare_loss"] * (-0.8 if clause.negated(j) else 1)
            used.add(j)

    # 4. words with their own polarity
    for i, token in enumerate(tokens):
        if i in used:
            continue
        polarity = 1 if token in lx.POSITIVE else -1 if token in lx.NEGATIVE else 0
        if not polarity:
            continue
        value = w["lexicon"] * polarity
        if "despite" in tokens[:i]:  # "rose despite the strike": the strike is not the news
            value *= 0.3
        if clause.negated(i):
            value = -0.6 * value
        if clause.hedged(i):
            value *= w["hedge"]
        total += value
    return total


class FinanceSentiment:
    """Default scorer; offline, deterministic, no model files."""

    name = "finance-rules"
    version = "1"

    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()

    def raw(self, text: str) -> float:
        """Unbounded evidence: > THRESHOLD positive, < -THRESHOLD negative."""
        return self.evidence(text).total

    def evidence(self, text: str) -> Evidence:
        if not text.strip():
            return Evidence(0.0, 0.0, False, False, False)
        # "+3%" / "-2.5%" are directions in market copy.
        text_for_rules = _SIGNED_PCT_RE.sub(
            lambda m: " up " if m.group(1) == "+" else " down ", text.lower()
        )
        text_for_rules = _LESS_BAD_RE.sub(" better-than-feared ", text_for_rules)
        clauses = _SPLIT_RE.split(text_for_rules)
        # "but" shifts weight to what follows it, as readers do.
        weights = [1.0] * len(clauses)
        if len(clauses) > 1:
            weights[-1] = 1.3
        rules = sum(
            wt * _clause_score(tokenize(clause))
            for wt, clause in zip(weights, clauses, strict=True)
        )
        return Evidence(
            rules,
            self._vader.polarity_scores(text)["compound"],
            bool(_SOCIAL_RE.search(text)),
            text.rstrip().endswith("?"),
            bool(_SARCASM_RE.search(text)),
        )

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        return [from_evidence(self.raw(text)) for text in texts]


@dataclass(frozen=True)
class Evidence:
    """The rules' reading of one text, also the learned scorers' strongest features."""

    rules: float
    vader: float  # VADER compound, -1..1
    social: bool  # looks like a post: cashtags, mentions, hashtags, emoji
    question: bool
    sarcastic: bool = False

    @property
    def total(self) -> float:
        total = (
            self.rules + WEIGHTS["vader_social" if self.social else "vader_headline"] * self.vader
        )
        if self.sarcastic and total > -THRESHOLD:
            # "great, another 20 % drop 🙃": the praise is the joke, the news is bad.
            total = -abs(total) - WEIGHTS["sarcasm"]
        # A question ("Should you buy X?") asserts less than a statement.
        return total * WEIGHTS["question"] if self.question else total

    def features(self) -> list[float]:
        return [
            math.tanh(self.total),
            math.tanh(self.rules),
            self.vader,
            float(self.social),
            float(self.question),
            float(self.sarcastic),
        ]


def from_evidence(total: float) -> Sentiment:
    """Map unbounded evidence to a label, a score in [-1, 1] and a confidence in [0.5, 1]."""
    score = math.tanh(total)
    margin = abs(abs(total) - THRESHOLD)
    confidence = 0.5 + 0.5 * math.tanh(2 * margin)
    if total > THRESHOLD:
        return Sentiment("positive", score, confidence)
    if total < -THRESHOLD:
        return Sentiment("negative", score, confidence)
    return Sentiment("neutral", score, confidence)
