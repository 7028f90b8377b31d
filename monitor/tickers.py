"""Tickers and companies mentioned in a text.

Three kinds of evidence, from surest to least: cashtags (``$AAPL``), company names and
aliases from the table (built-in plus ``monitor.companies`` in settings), and bare
upper-case symbols, which count only when the symbol is in the table and is not also a
common word or abbreviation (IT, ALL, CEO, AI…).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# ticker → names and aliases. A small, well-known default; extend it in settings.
DEFAULT_COMPANIES: dict[str, tuple[str, ...]] = {
    "AAPL": ("Apple", "Apple Inc"),
    "MSFT": ("Microsoft",),
    "GOOGL": ("Alphabet", "Google"),
    "AMZN": ("Amazon", "Amazon.com"),
    "META": ("Meta Platforms", "Facebook"),
    "NVDA": ("Nvidia",),
    "TSLA": ("Tesla",),
    "NFLX": ("Netflix",),
    "INTC": ("Intel",),
    "AMD": ("Advanced Micro Devices",),
    "IBM": ("IBM", "International Business Machines"),
    "ORCL": ("Oracle",),
    "JPM": ("JPMorgan", "JPMorgan Chase", "JP Morgan"),
    "BAC": ("Bank of America",),
    "GS": ("Goldman Sachs",),
    "MS": ("Morgan Stanley",),
    "WFC": ("Wells Fargo",),
    "C": ("Citigroup", "Citi"),
    "BA": ("Boeing",),
    "GE": ("General Electric",),
    "F": ("Ford", "Ford Motor"),
    "GM": ("General Motors",),
    "XOM": ("Exxon", "ExxonMobil", "Exxon Mobil"),
    "CVX": ("Chevron",),
    "PFE": ("Pfizer",),
    "JNJ": ("Johnson & Johnson",),
    "WMT": ("Walmart",),
    "DIS": ("Disney", "Walt Disney"),
    "KO": ("Coca-Cola",),
    "NKE": ("Nike",),
    "UBER": ("Uber",),
    "COIN": ("Coinbase",),
}

# Symbols that are also words or common abbreviations: only a cashtag counts for these.
AMBIGUOUS = frozenset(
    """
    A I IT ALL ARE BE CEO CFO COO CTO AI EV EU UK US USA GDP CPI IPO ETF FED SEC ON OR SO GO
    NOW HAS CAN ONE NEW BIG ANY BY FOR OUT RUN SEE WELL LOVE REAL FUN CAR TV PM AM Q OK
    F C MS GS BA GE GM KO DIS COIN UBER META IBM AMD
    """.split()
)

_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)\b")
_SYMBOL = re.compile(r"(?<![\w$])([A-Z]{1,5})(?![\w])")


class TickerExtractor:
    name = "tickers"
    version = "1"

    def __init__(self, extra: Mapping[str, Sequence[str]] | None = None) -> None:
        table: dict[str, set[str]] = {t: set(a) for t, a in DEFAULT_COMPANIES.items()}
        for ticker, aliases in (extra or {}).items():
            table.setdefault(ticker.upper(), set()).update(aliases)
        self.symbols = frozenset(table)
        # Case-sensitive: "Apple" the company, not "apple" the fruit.
        alias_to_ticker = {alias: ticker for ticker, aliases in table.items() for alias in aliases}
        self._aliases = alias_to_ticker
        # Longest first so "Bank of America" wins over "America"-like shorter aliases.
        names = sorted(alias_to_ticker, key=len, reverse=True)
        self._alias_re = (
            re.compile(r"(?<!\w)(" + "|".join(re.escape(n) for n in names) + r")(?:'s)?(?!\w)")
            if names
            else None
        )

    def extract(self, text: str) -> list[str]:
        """Tickers in order of first mention, each once."""
        found: dict[str, int] = {}
        for where, ticker, _ in self.mentions(text):
            found.setdefault(ticker, where)
        return [t for t, _ in sorted(found.items(), key=lambda kv: kv[1])]

    def names_in(self, text: str) -> list[str]:
        """The words that named a company ("$AAPL", "Apple's"), for clause splitting."""
        return [matched for _, _, matched in self.mentions(text)]

    def mentions(self, text: str) -> list[tuple[int, str, str]]:
        """(offset, ticker, matched text) for every mention."""
        out = [(m.start(), m.group(1).upper(), m.group(0)) for m in _CASHTAG.finditer(text)]
        if self._alias_re is not None:
            out += [
                (m.start(), self._aliases[m.group(1)].upper(), m.group(0))
                for m in self._alias_re.finditer(text)
            ]
        # Bare symbols: only listed ones, never ambiguous ones, and not in an all-caps
        # shout ("STOCKS SOAR AS FED CUTS") where every word looks like a symbol.
        letters = [c for c in text if c.isalpha()]
        shouting = bool(letters) and sum(c.isupper() for c in letters) / len(letters) > 0.6
        if not shouting:
            out += [
                (m.start(), m.group(1), m.group(0))
                for m in _SYMBOL.finditer(text)
                if m.group(1) in self.symbols and m.group(1) not in AMBIGUOUS
            ]
        return out
