"""The demo corpus: seeded headlines, posts, articles and pictures over the last ~30 days.

Five fictitious companies, a dozen topics, finance-news wording with a known sentiment,
and one story: Nordwind Energy ($NWND) gets a burst of negative news (job cuts, a
regulator's fine, a profit warning) on the last two complete days. Every run with the
same seed and the same "today" is the same.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

COMPANIES: dict[str, tuple[str, str]] = {
    # ticker: (name, what it makes)
    "ACME": ("Acme Robotics", "industrial robots"),
    "BOLT": ("Bolt Motors", "electric cars"),
    "CIRB": ("Cirrus Bank", "consumer loans"),
    "DLTF": ("Delta Foods", "frozen meals"),
    "NWND": ("Nordwind Energy", "offshore wind farms"),
}
BURST_TICKER = "NWND"
BURST_TOPIC = "layoffs"

# (topic, sentiment, template). {co} company, {t} ticker, {n} number, {p} product.
HEADLINES: list[tuple[str, str, str]] = [
    ("earnings", "positive", "{co} quarterly profit rose {n}% on strong demand for {p}"),
    ("earnings", "positive", "{co} net loss narrowed as costs fell"),
    ("earnings", "negative", "{co} quarterly profit fell {n}% as sales of {p} slowed"),
    ("earnings", "negative", "{co} net loss widened to ${n} million"),
    ("earnings", "neutral", "{co} to report quarterly results next week"),
    ("guidance", "positive", "{co} raises full-year guidance after record orders"),
    ("guidance", "negative", "{co} cuts its full-year outlook"),
    ("m&a", "neutral", "{co} agrees to acquire a {p} start-up for ${n} million"),
    ("m&a", "positive", "{co} wins approval for its acquisition of a rival"),
    ("layoffs", "negative", "{co} announces job cuts in restructuring"),
    ("lawsuits and regulation", "negative", "Regulators fine {co} over safety breaches"),
    ("lawsuits and regulation", "positive", "{co} wins lawsuit over {p} patents"),
    ("supply chain", "negative", "Shortages of parts delay {co} deliveries of {p}"),
    ("supply chain", "positive", "{co} says supply chain shortages have eased"),
    ("markets", "positive", "${t} shares jumped {n}% after an analyst upgrade"),
    ("markets", "negative", "${t} shares tumbled {n}% after a downgrade"),
    ("markets", "neutral", "{co} shares will be listed on a second exchange"),
]
MACRO: list[tuple[str, str, str]] = [
    ("central banks and rates", "neutral", "Fed holds interest rates steady"),
    ("central banks and rates", "negative", "Central bank raises interest rates again"),
    ("inflation", "negative", "Consumer prices rise faster than expected, inflation at {n}%"),
    ("inflation", "positive", "Inflation eased to {n}% last month"),
    ("crypto", "positive", "Bitcoin rallies to a record high"),
    ("crypto", "negative", "Crypto exchange halts withdrawals; bitcoin plunges"),
    ("energy and commodities", "neutral", "Oil prices steady as OPEC meets"),
]
# Once, on the last burst day: the demo's "known headline" for searching.
KNOWN_HEADLINE = "Nordwind Energy chief executive resigns after regulator's record fine"
BURST: list[str] = [
    "Nordwind Energy to cut {n}00 jobs as losses mount",
    "Nordwind Energy layoffs: {n}00 workers told their jobs will go",
    "$NWND plunges after Nordwind Energy issues a profit warning and job cuts",
    "Regulators fine Nordwind Energy; more layoffs expected",
    "Nordwind Energy job cuts hit offshore wind farms crews",
]
SOCIAL: dict[str, list[str]] = {
    "positive": [
        "${t} love the news, loading up 🚀",
        "${t} breaking out, strong quarter",
        "${t} upgrade! beats estimates",
    ],
    "negative": [
        "${t} getting crushed today, terrible guidance",
        "${t} sell-off continues, weak demand",
        "${t} disappointed, misses estimates",
    ],
    "neutral": [
        "${t} anyone watching the call tomorrow?",
        "${t} volume picking up",
        "${t} results out on Thursday",
    ],
}
SCENES = ("factory", "bank", "car", "coin", "wind")
TINTS = {
    "ACME": (255, 236, 179),
    "BOLT": (187, 222, 251),
    "CIRB": (225, 190, 231),
    "DLTF": (200, 230, 201),
    "NWND": (178, 235, 242),
}
NO_TINT = (240, 240, 240)
SCENE_OF = {"ACME": "factory", "BOLT": "car", "CIRB": "bank", "DLTF": "factory", "NWND": "wind"}


@dataclass(frozen=True)
class CorpusSpec:
    days: int = 30
    per_day: int = 10  # wire headlines per day (press, posts and articles come on top)
    burst_days: int = 2  # the last complete days
    burst_per_day: int = 14
    seed: int = 7


@dataclass
class Entry:
    """One thing to publish: a wire headline, a press release, a social post or an article."""

    kind: str  # wire | press | social | article
    title: str
    text: str
    when: datetime
    ticker: str | None
    topic: str
    sentiment: str
    picture: dict[str, object] | None = None  # how to draw its image
    slug: str = ""


@dataclass
class Corpus:
    entries: list[Entry] = field(default_factory=list)
    today: datetime = field(default_factory=lambda: datetime.now(UTC))

    def of_kind(self, kind: str) -> list[Entry]:
        return [e for e in self.entries if e.kind == kind]


CITIES = ("Oslo", "Hamburg", "Rotterdam", "Lyon", "Turin", "Gdansk", "Bilbao", "Aarhus")
SOURCES = (
    "people familiar with the matter",
    "a company filing",
    "an analyst note",
    "a statement",
    "the chief financial officer",
    "a trade publication",
)


def _fill(template: str, ticker: str, rng: random.Random) -> str:
    name, product = COMPANIES[ticker]
    return template.format(co=name, t=ticker, n=rng.randint(2, 49), p=product)


def generate(spec: CorpusSpec = CorpusSpec(), *, today: datetime | None = None) -> Corpus:
    rng = random.Random(spec.seed)
    now = today or datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    corpus = Corpus(today=now)
    tickers = list(COMPANIES)

    def at(day_offset: int) -> datetime:
        # A time inside the day `day_offset` days before today. The draw never depends on
        # the clock (same corpus all day); today's items later than now move back an hour
        # at a time until they are in the past.
        when = midnight - timedelta(days=day_offset) + timedelta(seconds=rng.randint(0, 86399))
        while when > now - timedelta(minutes=1):
            when -= timedelta(hours=1)
        return when

    for day in range(spec.days, -1, -1):
        for _ in range(spec.per_day):
            if rng.random() < 0.25:
                topic, sentiment, template = rng.choice(MACRO)
                ticker = None
                title = template.format(n=rng.randint(2, 9))
            else:
                ticker = rng.choice(tickers)
                topic, sentiment, template = rng.choice(HEADLINES)
                title = _fill(template, ticker, rng)
            corpus.entries.append(
                Entry(
                    "wire",
                    title,
                    _lead(title, ticker, rng, now - timedelta(days=day)),
                    at(day),
                    ticker,
                    topic,
                    sentiment,
                    picture={
                        "kind": "chart",
                        "trend": {"positive": 1, "negative": -1}.get(sentiment, 0),
                        "seed": rng.randint(0, 10**6),
                        "tint": TINTS.get(ticker or "", NO_TINT),
                    },
                )
            )
        if day % 3 == 0:
            ticker = rng.choice(tickers)
            name, product = COMPANIES[ticker]
            corpus.entries.append(
                Entry(
                    "press",
                    f"{name} announces a new line of {product}",
                    f"{name} ({ticker}) today presented its new {product}.",
                    at(day),
                    ticker,
                    "markets",
                    "neutral",
                )
            )
        for _ in range(3):
            ticker = rng.choice(tickers)
            sentiment = rng.choice(["positive", "negative", "neutral", "neutral"])
            text = (
                rng.choice(SOCIAL[sentiment]).format(t=ticker)
                + f" ({rng.choice(CITIES)}, {rng.randint(1, 59)}m ago)"
            )
            scene = SCENE_OF[ticker] if rng.random() < 0.5 else None
            corpus.entries.append(
                Entry(
                    "social",
                    "",
                    text,
                    at(day),
                    ticker,
                    "markets",
                    sentiment,
                    picture={"kind": "scene", "scene": scene, "caption": COMPANIES[ticker][0]}
                    if scene
                    else None,
                )
            )
        if day == 1:
            corpus.entries.append(
                Entry(
                    "wire",
                    KNOWN_HEADLINE,
                    _lead(KNOWN_HEADLINE, BURST_TICKER, rng, now - timedelta(days=1)),
                    at(day),
                    BURST_TICKER,
                    "lawsuits and regulation",
                    "negative",
                    picture={
                        "kind": "chart",
                        "trend": -1,
                        "seed": rng.randint(0, 10**6),
                        "tint": TINTS[BURST_TICKER],
                    },
                )
            )
        if 1 <= day <= spec.burst_days:
            for _ in range(spec.burst_per_day):
                title = rng.choice(BURST).format(n=rng.randint(2, 9))
                corpus.entries.append(
                    Entry(
                        "wire",
                        title,
                        _lead(title, BURST_TICKER, rng, now - timedelta(days=day)),
                        at(day),
                        BURST_TICKER,
                        BURST_TOPIC,
                        "negative",
                        picture={
                            "kind": "chart",
                            "trend": -1,
                            "seed": rng.randint(0, 10**6),
                            "tint": TINTS[BURST_TICKER],
                        },
                    )
                )
    for i, ticker in enumerate(tickers[:4]):
        name, product = COMPANIES[ticker]
        corpus.entries.append(
            Entry(
                "article",
                f"Inside {name}: how {product} are made",
                f"A visit to the {name} plant. "
                + " ".join(
                    f"Workers assemble {product} on line {k}, and the company says demand is steady."
                    for k in range(1, 6)
                ),
                at(5 + i),
                ticker,
                "markets",
                "neutral",
                picture={"kind": "scene", "scene": SCENE_OF[ticker], "caption": name},
            )
        )
    for n, entry in enumerate(corpus.entries):
        entry.slug = f"{entry.kind}-{n:04d}"
    return corpus


def _lead(title: str, ticker: str | None, rng: random.Random, when: datetime) -> str:
    """A first sentence that differs from item to item, as real leads do."""
    city, source = rng.choice(CITIES), rng.choice(SOURCES)
    day = f"{when:%A} {when.day} {when:%B}"
    if ticker is None:
        return f"Reported from {city} on {day}, according to {source}."
    return f"{COMPANIES[ticker][0]} ({ticker}), {city}, {day}: details from {source}."
