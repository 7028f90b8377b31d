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


def _t(name: str, prompts: str, keywords: str) -> TopicSpec:
    return TopicSpec(
        name=name,
        prompts=[p.strip() for p in prompts.split("|")],
        keywords=[k.strip() for k in keywords.split(",")],
    )


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
