"""The topic set's shape and the finance default: settings data, read by the monitor.

Lives with the settings (not in ``monitor``) so the settings object, which every part
imports, depends on nothing downstream.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TopicSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    prompts: list[str] = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)
    examples: list[str] = Field(
        default_factory=list, description="Texts about the topic: sharpen its similarity."
    )


def _t(name: str, prompts: str, keywords: str) -> TopicSpec:
    return TopicSpec(
        name=name,
        prompts=[p.strip() for p in prompts.split("|")],
        keywords=[k.strip() for k in keywords.split(",")],
        examples=list(EXAMPLES.get(name, ())),
    )


# Written for SimMIM (no data set's text): what each event topic reads like in a feed.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "earnings": (
        "Quarterly profit beat forecasts as revenue grew 12 percent",
        "The retailer posted a net loss for the second quarter",
        "Earnings per share came in at 1.05 dollars against 0.98 expected",
    ),
    "guidance": (
        "The company raised its full-year outlook after a strong quarter",
        "Management cut its sales forecast for next year",
        "The group warned that profit will fall short of its target",
    ),
    "m&a": (
        "The chipmaker agreed to buy its rival in an all-cash deal",
        "Shareholders approved the merger of the two lenders",
        "A private equity firm made a takeover offer for the retailer",
    ),
    "central banks and rates": (
        "The central bank held interest rates steady and signalled cuts later this year",
        "Policy makers raised the benchmark rate by a quarter point",
        "Bond traders bet the Fed will lower borrowing costs in June",
    ),
    "inflation": (
        "Consumer prices rose 3.4 percent from a year earlier",
        "Food and energy costs pushed inflation to a new high",
        "Price pressures eased for a third month in a row",
    ),
    "layoffs": (
        "The company will cut 1,500 jobs as part of a restructuring",
        "Workers were told their positions will be eliminated by the end of the year",
        "The carmaker is laying off staff at two plants",
        "Hundreds of employees lose their jobs as the factory closes",
    ),
    "lawsuits and regulation": (
        "Regulators opened an investigation into the bank's lending practices",
        "A court ordered the company to pay damages to former customers",
        "The watchdog fined the insurer for misleading clients",
    ),
    "banking stress": (
        "Depositors pulled billions from the regional lender in two days",
        "The bank's shares collapsed amid fears over its capital",
        "Authorities stepped in to rescue the troubled lender",
    ),
    "crypto": (
        "Bitcoin climbed above 70,000 dollars as crypto funds drew inflows",
        "A crypto exchange halted withdrawals after a hack",
        "Ether and other tokens fell sharply overnight",
    ),
    "supply chain": (
        "A shortage of parts forced the automaker to halt production",
        "Container freight rates doubled as ships avoided the canal",
        "Suppliers struggled to deliver components on time",
    ),
    "energy and commodities": (
        "Oil prices rose after producers agreed to extend output cuts",
        "Gold hit a record as investors sought safety",
        "Copper fell on weaker demand from factories",
    ),
    "markets": (
        "Stocks rallied to a record close led by technology shares",
        "The index fell 2 percent in its worst day since March",
        "Global equities slid as investors fled risk",
    ),
}


DEFAULT_TOPICS: tuple[TopicSpec, ...] = (
    _t(
        "earnings",
        "a company's quarterly earnings results|profit and revenue figures|an earnings report",
        "earnings, quarterly results, q1, q2, q3, q4, eps, revenue, net income, operating profit,"
        " net profit, profit, net sales, results",
    ),
    _t(
        "guidance",
        "a company raises or cuts its outlook|profit guidance and forecast",
        "guidance, outlook, forecast, profit warning, raises forecast, cuts forecast",
    ),
    _t(
        "m&a",
        "a merger or acquisition deal|a company buys another company|a takeover bid",
        "merger, acquisition, acquire, acquires, acquired, takeover, buyout, deal to buy, stake,"
        " bid for",
    ),
    _t(
        "central banks and rates",
        "the central bank changes interest rates|the federal reserve|a rate hike or cut",
        "fed, federal reserve, ecb, central bank, interest rate, interest rates, rate hike,"
        " rate cut, powell, lagarde, bank of england, monetary policy, basis points",
    ),
    _t(
        "inflation",
        "rising consumer prices and inflation|the consumer price index",
        "inflation, cpi, consumer prices, price index, deflation, pce",
    ),
    _t(
        "layoffs",
        "a company lays off workers|job cuts and redundancies",
        "layoffs, layoff, job cuts, cut jobs, redundancies, laid off, lay off, headcount",
    ),
    _t(
        "lawsuits and regulation",
        "a lawsuit or court ruling against a company|regulators fine or investigate a company",
        "lawsuit, sued, sues, court, ruling, regulator, regulators, sec, antitrust, probe,"
        " investigation, fined, fine, settlement, class action",
    ),
    _t(
        "banking stress",
        "a bank run or a failing bank|banks in financial distress",
        "bank run, deposit outflows, bank failure, bailout, liquidity crisis, insolvency,"
        " fdic, capital shortfall",
    ),
    _t(
        "crypto",
        "bitcoin and cryptocurrency markets|a crypto exchange",
        "bitcoin, btc, ethereum, eth, crypto, cryptocurrency, stablecoin, blockchain, token",
    ),
    _t(
        "supply chain",
        "supply chain disruption and shortages|shipping containers and ports",
        "supply chain, shortage, shortages, shipping, freight, port congestion, logistics,"
        " semiconductor shortage",
    ),
    _t(
        "energy and commodities",
        "oil prices and energy markets|gold and commodity prices",
        "oil, crude, brent, wti, opec, natural gas, gold, copper, commodities",
    ),
    _t(
        "markets",
        "the stock market rallies or sells off|a stock price chart",
        "stocks, stock market, shares, s&p 500, nasdaq, dow, rally, sell-off, selloff,"
        " market, index",
    ),
)
