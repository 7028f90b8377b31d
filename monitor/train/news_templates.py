"""Generated news-style sentences with known labels, for training the default model.

The only public labelled finance set we train on is made of posts. Filings and wire copy
read differently ("operating profit rose to EUR 5.2 mn from EUR 3.1 mn"), and a model that
saw only posts learns to ignore what the rules read well there. These templates, written
for this project, add that style: what moved and which way (the sign is the metric's
times the direction's), comparisons of two figures, rating actions, estimates beaten or
missed, guidance, hedged forward-looking forms, business events (orders and contracts won or
lost, agreements signed or ended, savings, a loss turned into a profit, closures and
lay-offs), and plain factual statements that are neutral.
Deterministic for a seed; never drawn from any evaluation set.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

COMPANIES = (
    "Nordwind Energy",
    "Alder Systems",
    "Kestrel Foods",
    "Brightwater Bank",
    "Halvorsen Paper",
    "Orchid Pharma",
    "Vantor Logistics",
    "Greyfield Mining",
    "Lumen Retail",
    "Sato Motors",
    "Corvane Telecom",
    "Pinecrest Insurance",
    "the company",
    "the group",
    "the bank",
    "the retailer",
    "the airline",
    "the lender",
    "the chipmaker",
    "the insurer",
)
GOOD = (
    "operating profit",
    "net sales",
    "revenue",
    "net profit",
    "order intake",
    "earnings",
    "operating margin",
    "EBITDA",
    "pre-tax profit",
    "comparable sales",
    "cash flow",
    "dividend",
    "market share",
    "deliveries",
)
BAD = (
    "net loss",
    "operating loss",
    "costs",
    "debt",
    "expenses",
    "impairment charges",
    "loan losses",
    "inventories write-downs",
)
UP = ("rose", "increased", "grew", "climbed", "jumped", "improved", "surged", "was up")
DOWN = ("fell", "decreased", "declined", "dropped", "slipped", "was down", "shrank", "slumped")
PERIODS = (
    "in the first quarter",
    "in the second quarter",
    "in January-June",
    "in the nine-month period",
    "for the full year",
    "in the third quarter",
    "in 2025",
)
CURRENCIES = ("EUR", "USD", "SEK", "GBP")
NEUTRAL = (
    "{c} will publish its interim report on {day} {month}.",
    "{c} is headquartered in {city} and employs about {n:,} people.",
    "The annual general meeting of {c} will be held in {city} on {day} {month}.",
    "{c} operates {n} stores in {country}.",
    "{c} said the transaction is expected to close {period}.",
    "The shares of {c} are listed on the {city} stock exchange.",
    "{c} appointed a new chief financial officer, effective {day} {month}.",
    "The agreement covers the supply of components to plants in {country}.",
    "{c} has about {n} customers in {country}.",
    "The board of {c} proposes that the meeting authorise a share buyback of up to {n} shares.",
    "{c} makes packaging materials and tissue products.",
    "Financial details of the deal were not disclosed.",
    "{c} will hold a conference call for analysts at {hour}:00 local time.",
    "The figures are unaudited.",
    "{c} changed its reporting segments as of {month}.",
)
POSITIVE = (
    "{c} won a {cur} {x} mn contract to supply equipment to {country}.",
    "{broker} upgraded {c} to buy from hold.",
    "{broker} raised its price target on {c} to {cur} {hi} from {cur} {lo}.",
    "{c} beat analysts' estimates {period}.",
    "{c} raised its full-year guidance.",
    "{c} swung to a profit {period}.",
    "{c} expects its operating profit to improve this year.",
    "Shares in {c} jumped {p} % after the results.",
    "{c} reported record orders {period}.",
    "{c} said demand remained strong across all regions.",
)
NEGATIVE = (
    "{broker} downgraded {c} to sell from neutral.",
    "{broker} cut its price target on {c} to {cur} {lo} from {cur} {hi}.",
    "{c} missed analysts' estimates {period}.",
    "{c} lowered its full-year outlook.",
    "{c} issued a profit warning.",
    "{c} will cut {n} jobs in {country}.",
    "Shares in {c} fell {p} % after the results.",
    "{c} swung to a loss {period}.",
    "{c} said demand weakened in all regions.",
    "{c} filed for bankruptcy protection.",
    "Regulators fined {c} {cur} {x} mn.",
)
# Business events as wire copy and press releases tell them: what a model that learned from
# posts reads as neutral, since nothing in them "rises" or "falls".
POSITIVE_EVENTS = (
    "{c} has won an order worth {cur} {x} million from {buyer}.",
    "{c} has been awarded a {cur} {x} mn contract by {buyer}.",
    "{c} and {buyer} signed a {k}-year agreement under which {c} will supply {product}.",
    "{c} has signed a cooperation agreement with {buyer} on {product}.",
    "{c} signed a letter of intent with {buyer} for the delivery of {product}.",
    "{c} was selected by {buyer} as the supplier of {product}.",
    "The order from {buyer} is the largest in {c}'s history.",
    "The programme is expected to bring annual cost savings of {cur} {x} million.",
    "{c} said the efficiency measures will save about {cur} {x} mn a year from {year}.",
    "{c} turned to an operating profit of {cur} {a} mn from a loss of {cur} {b} mn.",
    "{c} returned to profit {period} after a loss a year earlier.",
    "{c} will expand its production capacity in {country} to meet growing demand.",
    "{c} opened a new plant in {city}, adding {n} jobs.",
    "{c} secured a {cur} {x} mn credit facility on favourable terms.",
    "{c} agreed to acquire {buyer}, strengthening its position in {country}.",
    "{c} will pay a dividend of {cur} 0.{k}0 per share, up from {cur} 0.{j}0.",
    "{c} extended its supply deal with {buyer} by {k} years.",
    "Demand for {product} from {c} continued to grow {period}.",
)
NEGATIVE_EVENTS = (
    "{buyer} cancelled its order for {product} from {c}.",
    "{c} lost its contract with {buyer} to a competitor.",
    "{buyer} terminated its supply agreement with {c}.",
    "{c} turned to an operating loss of {cur} {a} mn from a profit of {cur} {b} mn.",
    "{c} will close its plant in {city}, and {n} jobs will be lost.",
    "{c} started negotiations on temporary lay-offs affecting {n} employees.",
    "{c} booked a write-down of {cur} {x} mn on its {country} operations.",
    "Cost overruns on the {buyer} project will weigh on {c}'s results.",
    "{c} is being investigated by the authorities over suspected price fixing.",
    "{c} warned that its {product} deliveries will be delayed.",
    "{c} postponed the start of production because of technical problems.",
    "{c} scrapped its dividend to preserve cash.",
    "Demand for {product} from {c} weakened {period}.",
)
BUYERS = (
    "the Finnish Transport Agency",
    "a European utility",
    "Deutsche Bahn",
    "the Polish navy",
    "a US retailer",
    "an Asian shipyard",
    "the City of Oslo",
    "a Brazilian paper mill",
)
PRODUCTS = (
    "ferries",
    "automation systems",
    "wind turbine towers",
    "paper machines",
    "software licences",
    "rolling stock",
    "telecom equipment",
    "packaging lines",
)
BROKERS = ("Goldman Sachs", "Morgan Stanley", "Jefferies", "UBS", "Barclays", "an analyst")
CITIES = ("Helsinki", "Oslo", "Stockholm", "Frankfurt", "London", "Madrid", "Warsaw")
COUNTRIES = ("Finland", "Germany", "Poland", "Brazil", "India", "Sweden", "Canada")
MONTHS = ("January", "March", "April", "June", "August", "October", "December")


def generate(n: int, *, seed: int = 0) -> Iterator[tuple[str, str]]:
    """``n`` (sentence, label) pairs; about a third of each label."""
    rng = random.Random(seed)
    for _ in range(n):
        yield _one(rng)


def _fill(rng: random.Random, template: str) -> str:
    x = rng.randint(2, 900)
    lo, hi = sorted(rng.sample(range(2, 900), 2))
    return template.format(
        lo=lo,
        hi=hi,
        c=rng.choice(COMPANIES),
        cur=rng.choice(CURRENCIES),
        x=x,
        y=rng.randint(2, 900),
        n=rng.randint(20, 5000),
        p=rng.randint(2, 25),
        broker=rng.choice(BROKERS),
        period=rng.choice(PERIODS),
        city=rng.choice(CITIES),
        country=rng.choice(COUNTRIES),
        day=rng.randint(1, 28),
        month=rng.choice(MONTHS),
        hour=rng.randint(8, 16),
        a=f"{rng.randint(2, 90) / 10:.1f}",
        b=f"{rng.randint(2, 90) / 10:.1f}",
        k=rng.randint(2, 9),
        j=rng.randint(1, 9),
        year=rng.randint(2026, 2029),
        buyer=rng.choice(BUYERS),
        product=rng.choice(PRODUCTS),
    )


def _one(rng: random.Random) -> tuple[str, str]:
    kind = rng.random()
    if kind < 0.3:
        return _fill(rng, rng.choice(NEUTRAL)), "neutral"
    if kind < 0.45:
        good = rng.random() < 0.5
        return _fill(rng, rng.choice(POSITIVE if good else NEGATIVE)), (
            "positive" if good else "negative"
        )
    if kind < 0.65:
        good = rng.random() < 0.55
        sentence = _fill(rng, rng.choice(POSITIVE_EVENTS if good else NEGATIVE_EVENTS))
        return sentence[0].upper() + sentence[1:], ("positive" if good else "negative")
    metric_good = rng.random() < 0.6
    metric = rng.choice(GOOD if metric_good else BAD)
    up = rng.random() < 0.5
    c, period, cur = rng.choice(COMPANIES), rng.choice(PERIODS), rng.choice(CURRENCIES)
    a, b = sorted(rng.sample(range(2, 950), 2))
    now, then = (b, a) if up else (a, b)
    now_s, then_s = f"{now / 10:.1f}", f"{then / 10:.1f}"
    c_cap = c[0].upper() + c[1:]
    forms = [
        f"{c_cap}'s {metric} {rng.choice(UP if up else DOWN)} to {cur} {now_s} mn "
        f"from {cur} {then_s} mn {period}.",
        f"{c_cap}'s {metric} {rng.choice(UP if up else DOWN)} by {rng.randint(2, 60)} % {period}.",
        f"{period[0].upper() + period[1:]}, {metric} totalled {cur} {now_s} mn, compared with "
        f"{cur} {then_s} mn a year earlier.",
        f"{c_cap} reported {metric} of {cur} {now_s} mn {period}, "
        f"{'up' if up else 'down'} from {cur} {then_s} mn.",
    ]
    sentence = rng.choice(forms)
    label = "positive" if metric_good == up else "negative"
    twist = rng.random()
    if twist < 0.12:  # hedged forward-looking: weaker, same direction
        verb = "increase" if up else "decrease"
        sentence = f"{c_cap} expects its {metric} to {verb} {rng.choice(PERIODS)}."
    return sentence, label
