"""The finance vocabulary the default sentiment scorer reads.

Financial polarity is mostly compositional: what moved (a *metric*) times which way it
moved (a *direction*). A metric's sign says whether more of it is good (profit) or bad
(debt); a direction's sign says up or down. Words that carry polarity on their own
("bankruptcy", "upgrade") are in ``POSITIVE`` / ``NEGATIVE``. All entries are lower-case
single tokens or space-separated phrases; multi-word phrases are matched as token runs.
"""

from __future__ import annotations

# More is better.
GOOD_METRICS = frozenset(
    """
    profit profits earnings revenue revenues sales income ebit ebitda ebita margin margins
    dividend dividends orders order-intake backlog eps turnover cashflow cash-flow growth
    share-price shares stock stocks price-target target rating ratings outlook guidance
    forecast forecasts demand output production deliveries shipments bookings traffic
    subscribers users customers occupancy market-share value valuation result results
    performance profitability sales-volume volumes volume capacity jobs workforce headcount
    employment payrolls liquidity reserves surplus gdp exports returns return yield-on-cost
    """.split()
)

# More is worse.
BAD_METRICS = frozenset(
    """
    loss losses net-loss costs cost expenses expense debt debts borrowing leverage deficit
    unemployment jobless layoffs job-cuts redundancies writedowns write-downs writedown
    impairment impairments charges provisions claims delinquencies defaults churn inflation
    arrears liabilities risk risks volatility spreads pressure headwinds outflows
    """.split()
)

UP = frozenset(
    """
    rose rise rises rising risen widening increase increased increases increasing grew grow grows
    growing grown up climbed climb climbs jumped jump jumps surged surge surges soared soar
    soars gained gain gains improved improve improves improving doubled tripled higher boosted
    boost boosts raised raise raises lifted lift lifts widened widen widens expanded expand
    expands strengthened strengthen rebounded rebound rebounds rallied rally rallies recovered
    recover recovers advanced advance advances accelerated accelerate exceeded exceed exceeds
    beat beats topped tops swelled ballooned spiked spikes hike hiked hikes upped
    """.split()
)

DOWN = frozenset(
    """
    fell fall falls falling fallen decrease decreased decreases decreasing declined decline
    declines declining dropped drop drops down slipped slip slips slid slide slides lower
    lowered lowers cut cuts cutting slumped slump slumps plunged plunge plunges plummeted
    plummet tumbled tumble tumbles sank sink sinks shrank shrink shrinks shrinking shrunk
    narrowed narrow narrows narrowing reduced reduce reduces reducing weakened weaken weakens
    halved eased ease eases easing contracted slowed slow slows slowing
    dipped dip dips trimmed trim trims slashed slash slashes missed misses decelerated
    deteriorated deteriorate worsened
    """.split()
)

# Words and phrases with a polarity of their own (Loughran-McDonald style, written for us).
POSITIVE = frozenset(
    """
    upgrade upgraded upgrades outperform outperformed outperforms overweight buy bullish
    record-high all-time-high beat beats beating surpass surpassed surpasses strong stronger
    strongest robust solid upbeat optimistic optimism positive favorable favourable win wins
    won winning awarded award awards contract-win breakthrough approval approved approves
    successful success succeeds profitable boom booming rally rallies soar soaring surge
    surging gain gains improvement improvements improved recovery rebound momentum
    outperformance top-pick accretive resilient resilience exceeded exceeding upside tailwind
    tailwinds milestone expansion expands expanded partnership awarded launch launches
    record-profit turnaround turned-to-profit returned-to-profit back-in-black
    better-than-feared dismissed acquitted cleared buyback buybacks
    """.split()
)

NEGATIVE = frozenset(
    """
    downgrade downgraded downgrades underperform underperformed underweight sell bearish
    bankruptcy bankrupt insolvency insolvent default defaulted lawsuit lawsuits sued sues
    fraud probe investigation investigated fined penalty penalties sanction sanctions
    warning warns warned profit-warning miss missed misses weak weaker weakest weakness
    disappointing disappointed disappoint disappoints slump plunge plunges plunged crash
    crashes crashed collapse collapsed collapses selloff sell-off slowdown recession
    layoffs layoff laid-off recall recalls halt halted halts suspend suspended suspends delay
    delayed delays shortfall shortage shortages breach hack hacked scandal resign resigns
    resigned ousted downturn losses loss-making unprofitable struggle struggles struggling
    concern concerns worries worried fears fear jitters turmoil crisis distress distressed
    downside headwind headwinds pessimistic gloomy bleak plummet plummets tumble tumbles
    tumbled sank slumped slumps writedown write-down impairment impairments dilutive
    shutdown closure closures strike strikes bailout uncertainty volatile rescued rescue
    withdrew withdrawn scrapped abandoned
    """.split()
)

NEGATORS = frozenset(
    "not no never without neither nor cannot can't won't didn't doesn't don't isn't wasn't "
    "aren't weren't hasn't haven't hadn't failed fails fail unable".split()
)

HEDGES = frozenset(
    "may might could would should expects expected expect forecasts forecasted predicts "
    "anticipates anticipated estimates estimated plans planned aims targets if unless "
    "possible possibly potential potentially likely unlikely rumored rumoured reportedly "
    "considering mulls weighs seeks proposes proposed".split()
)

# Words that join two numbers as "now vs before": "EUR 5m compared with EUR 3m".
COMPARATORS = frozenset(
    "compared from versus vs vs. against corresponding year-earlier a-year-earlier".split()
)

# Token rewrites applied before matching, so phrases become single tokens.
PHRASES = {
    "operating profit": "profit",
    "net profit": "profit",
    "pre-tax profit": "profit",
    "pretax profit": "profit",
    "net sales": "sales",
    "net income": "income",
    "net loss": "net-loss",
    "operating loss": "net-loss",
    "pre-tax loss": "net-loss",
    "order intake": "order-intake",
    "cash flow": "cash-flow",
    "market share": "market-share",
    "share price": "share-price",
    "price target": "price-target",
    "job cuts": "job-cuts",
    "sales volume": "sales-volume",
    "record high": "record-high",
    "all-time high": "all-time-high",
    "all time high": "all-time-high",
    "sell off": "sell-off",
    "laid off": "laid-off",
    "profit warning": "profit-warning",
    "write down": "write-down",
    "write downs": "writedowns",
    "loss making": "loss-making",
    "top pick": "top-pick",
    "contract win": "contract-win",
    "turned to a profit": "turned-to-profit",
    "turned to profit": "turned-to-profit",
    "swung to a profit": "turned-to-profit",
    "returned to profit": "returned-to-profit",
    "back in the black": "back-in-black",
    "swung to a loss": "net-loss",
    "turned to a loss": "net-loss",
    "in the red": "net-loss",
    "year earlier": "year-earlier",
    "a year ago": "year-earlier",
}
