"""The company universe: who the monitor can recognise, by name, alias and listing symbol.

Built from three layers, later ones winning: the ~1,840 companies of 20 indices that
`pytickersymbols` ships (S&P 500/100/600, NASDAQ 100, Dow, FTSE 100, DAX family, CAC 40,
EURO STOXX 50, AEX, BEL 20, IBEX 35, OMX Helsinki/Stockholm, SMI, Nikkei 225; offline data
inside the package), our own short forms and former names (``KNOWN_ALIASES``: archives say
"GlaxoSmithKline" and "Royal Bank of Scotland"), and the user's own: ``monitor.companies``
in settings and ``<data dir>/companies.csv`` (``simmim companies add|import``).

Every company has **one canonical id** — its primary listing's symbol (``AAPL``, ``BARC.L``,
``7203.T``) — so "Barclays", ``$BCS``, ``LON:BARC`` and ``BARC.L`` all land in one series.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from monitor.company_names import fold, name_variants
from simmim.errors import ConfigError
from simmim.paths import DataLayout
from simmim.settings import Settings

USER_FILE = "companies.csv"
USER_COLUMNS = ("id", "name", "aliases", "symbols")

# Short forms and former names that listings do not carry; keyed by canonical id.
KNOWN_ALIASES: dict[str, tuple[str, ...]] = {
    "AAPL": ("Apple",),
    "GOOGL": ("Google", "Alphabet"),
    "META": ("Facebook", "Meta"),
    "AMZN": ("Amazon", "Amazon.com"),
    "MSFT": ("Microsoft",),
    "NVDA": ("Nvidia", "NVIDIA"),
    "JPM": ("JPMorgan", "JP Morgan", "J.P. Morgan", "JPMorgan Chase"),
    "BAC": ("Bank of America", "BofA"),
    "C": ("Citigroup", "Citi", "Citibank"),
    "GS": ("Goldman Sachs", "Goldman"),
    "MS": ("Morgan Stanley",),
    "WFC": ("Wells Fargo",),
    "BRK.B": ("Berkshire Hathaway", "Berkshire"),
    "XOM": ("Exxon", "ExxonMobil", "Exxon Mobil"),
    "GSK.L": ("GlaxoSmithKline", "Glaxo", "GSK"),
    "NWG.L": ("NatWest", "Royal Bank of Scotland", "RBS"),
    "LLOY.L": ("Lloyds", "Lloyds Bank", "Lloyds Banking Group"),
    "SHELL.AS": ("Shell", "Royal Dutch Shell"),
    "BP.L": ("BP", "British Petroleum"),
    "HSBA.L": ("HSBC", "HSBC Holdings"),
    "AZN.L": ("AstraZeneca", "Astra Zeneca"),
    "UNA.AS": ("Unilever",),
    "RIO.L": ("Rio Tinto",),
    "DGE.L": ("Diageo",),
    "TSCO.L": ("Tesco",),
    "VOW3.DE": ("Volkswagen", "VW"),
    "MBG.DE": ("Mercedes-Benz", "Daimler"),
    "DB1.DE": ("Deutsche Börse", "Deutsche Boerse"),
    "DBK.DE": ("Deutsche Bank",),
    "SAP.DE": ("SAP",),
    "NESN.SW": ("Nestle", "Nestlé"),
    "ROG.SW": ("Roche",),
    "NOVN.SW": ("Novartis",),
    "UBSG.SW": ("UBS",),
    "ABI.BR": ("AB InBev", "Anheuser-Busch InBev", "Anheuser-Busch"),
    "MC.PA": ("LVMH",),
    "TTE.PA": ("TotalEnergies",),
    "NOKIA.HE": ("Nokia",),
    "ERIC-B.ST": ("Ericsson",),
    "7203.T": ("Toyota", "Toyota Motor"),
    "6758.T": ("Sony",),
    "KO": ("Coca-Cola", "Coke"),
    "DIS": ("Disney", "Walt Disney"),
    "F": ("Ford", "Ford Motor"),
    "GM": ("General Motors",),
    "GE": ("General Electric",),
    "IBM": ("IBM", "International Business Machines"),
    "INTC": ("Intel",),
    "AMD": ("AMD", "Advanced Micro Devices"),
    "ORCL": ("Oracle",),
    "NFLX": ("Netflix",),
    "TSLA": ("Tesla",),
    "PFE": ("Pfizer",),
    "JNJ": ("Johnson & Johnson", "J&J"),
    "WMT": ("Walmart", "Wal-Mart"),
    "NKE": ("Nike",),
    "BA": ("Boeing",),
    "CVX": ("Chevron",),
    "UBER": ("Uber",),
    "COIN": ("Coinbase",),
}


@dataclass(frozen=True)
class Company:
    id: str  # canonical: the primary listing's symbol
    name: str
    aliases: tuple[str, ...] = ()  # names people write, accent-folded
    symbols: tuple[str, ...] = ()  # listing symbols: BARC.L, BCS, LON:BARC
    country: str = ""
    industries: tuple[str, ...] = ()
    isins: tuple[str, ...] = ()
    indices: tuple[str, ...] = ()
    source: str = "listed"  # listed | known | settings | user

    def describe(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Universe:
    """Every company by id, with the lookups the extractor needs."""

    companies: dict[str, Company] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_alias: dict[str, set[str]] = {}
        self.by_symbol: dict[str, set[str]] = {}
        for company in self.companies.values():
            for alias in company.aliases:
                self.by_alias.setdefault(alias.lower(), set()).add(company.id)
            for symbol in (company.id, *company.symbols):
                self.by_symbol.setdefault(symbol.upper(), set()).add(company.id)
        digest = hashlib.sha256(
            json.dumps([c.describe() for c in sorted(self.companies.values(), key=_id)]).encode()
        )
        self.version = digest.hexdigest()[:10]

    def __len__(self) -> int:
        return len(self.companies)

    def get(self, company_id: str) -> Company | None:
        return self.companies.get(company_id) or self.companies.get(company_id.upper())

    def resolve(self, name_or_symbol: str, *, symbols: bool = True) -> Company | None:
        """The one company a name, alias or symbol stands for (None if none or several)."""
        text = name_or_symbol.strip()
        ids = set(self.by_symbol.get(text.upper(), set())) if symbols else set()
        if not ids:
            for variant in name_variants(text) or {fold(text)}:
                ids |= self.by_alias.get(variant.lower(), set())
        return self.companies[next(iter(ids))] if len(ids) == 1 else None

    def search(self, query: str, limit: int = 20) -> list[Company]:
        """Companies whose id, symbol, name or alias contains the query, best first."""
        q = fold(query).lower().strip()
        if not q:
            return sorted(self.companies.values(), key=_id)[:limit]
        scored = []
        for company in self.companies.values():
            keys = [company.id.lower(), *(s.lower() for s in company.symbols)]
            names = [fold(company.name).lower(), *(a.lower() for a in company.aliases)]
            if q in keys or q in names:
                rank = 0
            elif any(n.startswith(q) for n in names) or any(k.startswith(q) for k in keys):
                rank = 1
            elif any(q in n for n in names):
                rank = 2
            else:
                continue
            scored.append((rank, len(company.name), company.id, company))
        return [c for *_, c in sorted(scored, key=lambda s: s[:3])[:limit]]


def _id(company: Company) -> str:
    return company.id


def listed_companies() -> dict[str, Company]:
    """The companies `pytickersymbols` ships, merged per canonical id across indices."""
    from pytickersymbols import PyTickerSymbols

    data = PyTickerSymbols()
    indices: dict[str, set[str]] = {}
    for index in data.get_all_indices():
        for stock in data.get_stocks_by_index(index):
            indices.setdefault(_listing_id(stock), set()).add(index)
    out: dict[str, Company] = {}
    for stock in data.get_all_stocks():
        company_id = _listing_id(stock)
        symbols: set[str] = set()
        for listing in stock.get("symbols") or []:
            yahoo, google = listing.get("yahoo") or "", listing.get("google") or ""
            if yahoo and not yahoo.endswith(".F"):  # Frankfurt secondary lines collide
                symbols.add(yahoo.replace("-", ".") if "." not in yahoo else yahoo)
            if ":" in google and not google.startswith(("FRA:", "OTCMKTS:", "MCX:")):
                symbols.add(google)
        company = Company(
            company_id,
            stock["name"],
            tuple(sorted(name_variants(stock["name"]))),
            tuple(sorted(symbols - {company_id})),
            str(stock.get("country") or ""),
            tuple(stock.get("industries") or ()),
            tuple(stock.get("isins") or ()),
            tuple(sorted(indices.get(company_id, ()))),
        )
        out[company_id] = _merge(out.get(company_id), company)
    return out


def _listing_id(stock: Mapping[str, object]) -> str:
    symbol = str(stock.get("symbol") or "").strip()
    if symbol:
        return symbol.upper()
    return re.sub(r"[^A-Z0-9]+", "-", fold(str(stock["name"])).upper()).strip("-")


def _merge(old: Company | None, new: Company) -> Company:
    if old is None:
        return new
    return replace(
        old,
        aliases=tuple(sorted({*old.aliases, *new.aliases})),
        symbols=tuple(sorted({*old.symbols, *new.symbols})),
        industries=tuple(dict.fromkeys((*old.industries, *new.industries))),
        isins=tuple(sorted({*old.isins, *new.isins})),
        indices=tuple(sorted({*old.indices, *new.indices})),
    )


def _with_aliases(
    companies: dict[str, Company],
    extra: Mapping[str, Iterable[str]],
    source: str,
    *,
    create: bool = True,
) -> None:
    for raw_id, names in extra.items():
        company_id = raw_id.strip().upper()
        names = [n for n in names if n and n.strip()]
        variants = {v for n in names for v in name_variants(n)}
        old = companies.get(company_id)
        if old is None and not create:
            continue  # a short form for a company this listing data does not carry
        if old is None:
            old = Company(company_id, names[0] if names else company_id, source=source)
        companies[company_id] = replace(old, aliases=tuple(sorted({*old.aliases, *variants})))


def read_user_companies(path: Path) -> list[Company]:
    """``companies.csv``: id, name, aliases (";"-separated), symbols (";"-separated)."""
    if not path.is_file():
        return []
    out = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "id" not in reader.fieldnames:
            raise ConfigError(
                f"{path} has no 'id' column (it has {', '.join(reader.fieldnames or [])})",
                hint="columns: id,name,aliases,symbols (aliases and symbols ';'-separated)",
            )
        for line, row in enumerate(reader, start=2):
            company_id = (row.get("id") or "").strip().upper()
            if not company_id:
                raise ConfigError(f"{path} line {line}: empty id", hint="give every row an id")
            name = (row.get("name") or "").strip() or company_id
            symbols = {x.strip().upper() for x in (row.get("symbols") or "").split(";")}
            company = make_company(company_id, name, (row.get("aliases") or "").split(";"))
            out.append(replace(company, symbols=tuple(sorted(symbols - {"", company_id}))))
    return out


def write_user_companies(path: Path, companies: Sequence[Company]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(USER_COLUMNS)
        for c in sorted(companies, key=_id):
            writer.writerow([c.id, c.name, ";".join(c.aliases), ";".join(c.symbols)])
    tmp.replace(path)


def add_user_companies(path: Path, new: Sequence[Company]) -> list[Company]:
    """Add or replace companies in the user's file; returns the file's companies."""
    kept = {c.id: c for c in read_user_companies(path)}
    for company in new:
        kept[company.id] = company
    write_user_companies(path, list(kept.values()))
    return list(kept.values())


def import_companies(source: Path) -> list[Company]:
    """Companies from a user's CSV: ``ticker`` (or ``id``), ``name``, ``aliases``."""
    if not source.is_file():
        raise ConfigError(f"{source} does not exist", hint="pass a CSV with ticker,name,aliases")
    rows = []
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        key = "ticker" if "ticker" in fields else "id" if "id" in fields else None
        if key is None or "name" not in fields:
            raise ConfigError(
                f"{source} needs a ticker (or id) and a name column "
                f"(it has {', '.join(sorted(fields)) or 'none'})",
                hint="e.g. ticker,name,aliases with aliases ';'-separated",
            )
        for line, row in enumerate(reader, start=2):
            ticker, name = (row.get(key) or "").strip(), (row.get("name") or "").strip()
            if not ticker or not name:
                raise ConfigError(
                    f"{source} line {line}: ticker and name are both needed",
                    hint="fill both columns, or drop the row",
                )
            rows.append(
                make_company(ticker, name, (row.get("aliases") or "").split(";"), source="user")
            )
    return rows


def make_company(
    ticker: str, name: str, aliases: Iterable[str] = (), *, source: str = "user"
) -> Company:
    names = [name, *(a.strip() for a in aliases if a.strip())]
    symbol = ticker.strip().upper()
    return Company(
        symbol, name, tuple(sorted({v for n in names for v in name_variants(n)})), source=source
    )


@functools.lru_cache(maxsize=8)
def _cached_universe(settings_key: str, user_file: str, stamp: float) -> Universe:
    companies = dict(listed_companies())
    _with_aliases(companies, KNOWN_ALIASES, "known", create=False)
    _with_aliases(companies, json.loads(settings_key), "settings")
    if user_file:
        for company in read_user_companies(Path(user_file)):
            companies[company.id] = _merge(companies.get(company.id), company)
    return Universe(_drop_shared_aliases(companies))


def _drop_shared_aliases(companies: dict[str, Company]) -> dict[str, Company]:
    """An alias generated for two companies names neither ("Unilever" stays: both of its
    listings are one company to a reader only when the user says so). Exact names and
    the curated and user layers keep theirs."""
    owners: dict[str, set[str]] = {}
    for company in companies.values():
        for alias in company.aliases:
            owners.setdefault(alias.lower(), set()).add(company.id)
    out = {}
    for company_id, company in companies.items():
        keep = {fold(company.name).lower()} | {
            fold(a).lower() for a in KNOWN_ALIASES.get(company_id, ())
        }
        kept = tuple(
            a
            for a in company.aliases
            if len(owners[a.lower()]) == 1
            or a.lower() in keep
            or company.source in ("settings", "user")
        )
        out[company_id] = replace(company, aliases=kept)
    return out


def load_universe(
    extra: Mapping[str, Sequence[str]] | None = None, user_file: Path | None = None
) -> Universe:
    """The universe for these settings and this user file (cached per process while the
    file is unchanged)."""
    stamp = user_file.stat().st_mtime if user_file and user_file.is_file() else 0.0
    key = json.dumps({k: list(v) for k, v in sorted((extra or {}).items())})
    return _cached_universe(key, str(user_file or ""), stamp)


# ---- the back-end calls behind `simmim companies`, the API and the dashboard


def company_table(settings: Settings) -> Universe:
    """The universe these settings and this data directory's companies file give."""
    return load_universe(settings.monitor.companies, DataLayout(settings.data_dir).companies)


def search_companies(settings: Settings, query: str = "", limit: int = 20) -> list[Company]:
    return company_table(settings).search(query, limit)


def add_company(settings: Settings, ticker: str, name: str, aliases: Sequence[str] = ()) -> Company:
    """Add (or replace) one of the user's companies; rescore to re-tag old items."""
    company = make_company(ticker, name, aliases)
    add_user_companies(DataLayout(settings.data_dir).companies, [company])
    return company


def import_company_file(settings: Settings, source: Path) -> list[Company]:
    """Every row of a user's CSV (ticker,name,aliases) into the data directory's table."""
    companies = import_companies(source)
    add_user_companies(DataLayout(settings.data_dir).companies, companies)
    return companies
