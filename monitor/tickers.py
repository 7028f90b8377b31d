"""Companies mentioned in a text, as canonical ids of the company universe.

Forms people write, surest first: cashtags (``$BARC``, ``$BARC.L``), exchange-qualified
symbols (``(NASDAQ:FFIC)``, ``NYSE: GE``, ``LON:BARC``), exchange-suffixed symbols
(``BARC.L``; a cashtag of a listing the universe lacks still counts, as itself), names and
aliases ("Barclays", "GlaxoSmithKline", "Deutsche Boerse"), and
bare upper-case symbols, which count only when listed, at least three letters (or one of
the well-known few), not a word or abbreviation (IT, ALL, CEO…) and not in an all-caps
shout ("STOCKS SOAR AS FED CUTS").

**Names that are ordinary words** ("Next", "Shell", "Apple", "Sage", "Target": the
single-word names found in an English dictionary, ``COMMON_NAMES``) count only with
context: written with a capital, and either a finance cue nearby (shares, profit, CEO,
results, said…; within six words) or the company's own symbol in the text. At the start of
a sentence the capital says nothing, so there the cue must follow the name at once
("Next shares", "Shell said"). A name right after a first name is a person ("Harrison
Ford", "Michael Dell"); set idioms are not the company ("the Oracle of Omaha", "the Big
Apple", "apple of her eye", "a shell company").

**Roles**: the company a text is *about* is not the broker that rated it or the bank
quoted on it. "Netflix downgraded at Wells Fargo", "Wells Fargo downgrades Netflix",
"Goldman says Tesla …", "according to UBS": Wells Fargo, Goldman and UBS are raters and
are left out, so their series get no sentiment from other companies' news.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.companies import Company, Universe, load_universe
from monitor.company_names import fold

# Symbols that are also words or common abbreviations: only a cashtag counts for these.
AMBIGUOUS = frozenset(
    """
    A I IT ALL ARE BE CEO CFO COO CTO AI EV EU UK US USA GDP CPI IPO ETF FED SEC ON OR SO GO
    NOW HAS CAN ONE NEW BIG ANY BY FOR OUT RUN SEE WELL LOVE REAL FUN CAR TV PM AM Q OK
    F C MS GS BA GE GM KO DIS COIN UBER META IBM AMD
    EPS PE YOY QOQ ATH IMO USD EUR GBP JPY CNY OPEC NATO IMF ECB BOE BOJ FOMC NYSE LSE
    FTSE DAX CAC IBEX SMI ESG AGM PLC LLC INC LTD CORP CO ADR ADRS NAV REIT SPAC CEOS
    THE AND NOT YOU ARE WAS HIS HER ITS OUR THEY WHO WHY HOW TOP LOW HIGH BUY SELL HOLD
    DD YTD MOM WOW LOL OMG FYI ASAP BTW TBH IPA PR HR IR QE UN WHO RSS API APP
    KEY LOW CAT ICE CASH FAST SNOW MAN BEST LIFE HOME PLAY SAFE TECH AUTO GOOD CARE NICE
    TRUE BOX FIVE SUN CHINA INDIA PAY WORK SAVE DAY EAT ROCK FLY NET HUGE CALM DOG
    """.split()
)
# Bare symbols of fewer than three letters that are well known enough to count alone.
SHORT_SYMBOLS = frozenset({"BP", "HP", "GE", "GM"} - AMBIGUOUS)
# Single-word company names that are everyday English words: they need context to count.
COMMON_NAMES = frozenset(
    """
    apple amazon alphabet meta next shell sage target visa oracle orange ford fox gates
    puma sharp arm carnival coke canon rogers sabre waters weir phoenix prudential admiral
    aeon buckle cactus verve hub compass mosaic tapestry booking block
    """.split()
)
# Dictionary words that in finance copy are nearly always the company when capitalised
# ("Intel", "Kingfisher", "Chevron"): a capital is enough, lower case never counts.
CAPITALISED_NAMES = frozenset(
    """
    intel google adobe chevron cognizant kingfisher caterpillar hertz intuit nestle disco
    xylem yelp workday corning costar energizer hexagon hilltop persimmon redwood
    scholastic solaria tidewater domino's diodes harmonic plexus
    """.split()
)
# One-word names too generic to name a company even with context: never aliases alone.
GENERIC_NAMES = frozenset(
    """
    now news city partners employers investor northern southern universal continental nasdaq
    progressive integer interface box match block shift screen booking evolution compass
    enact stride diploma deluxe noble rational recruit hub pool ball harmonic diodes plexus
    total qt dow
    """.split()
)
CUES = frozenset(
    """
    share shares stock stocks profit profits revenue revenues sales earnings results quarter
    quarterly q1 q2 q3 q4 h1 h2 ceo cfo chief chairman executive executives boss analyst
    analysts investors investor dividend dividends upgrade upgrades upgraded downgrade
    downgrades downgraded buyback guidance outlook forecast forecasts plc inc corp ltd
    said says announced announces reports reported reporting unveils unveiled launches
    launched deal deals acquisition acquire acquires acquired merger takeover bid stake
    valuation ipo ftse nasdaq nyse index rating rated buy sell rally rallies jumps jumped
    falls fell rises rose slumps slumped slides slid gains gained drops dropped soars soared
    plunges plunged tumbles tumbled surges surged beats beat misses missed cuts raises
    layoffs jobs staff employees stores customers suppliers supplier rival rivals brand
    products company firm maker giant retailer bank lender insurer carmaker automaker
    chipmaker miner group brewer airline operator supermarket grocer investment loss
    losses impairment writedown recall plant factory vehicles cars iphone ipad deliveries
    subscribers users advertising ads sinks sank
    """.split()
)
# Right after a name at a sentence's start, these say it is the company.
NEXT_CUES = frozenset(
    """
    's shares share stock plc inc corp ltd said says reported reports announced announces
    posted posts beats beat misses missed ceo chief boss chairman cuts raises shareholders
    unveils launches warns warned rallies jumps falls rises slumps gains drops soars
    plunges tumbles surges cut raised lowered lifted trimmed slashed boosted hiked rose fell
    jumped slumped gained dropped soared plunged tumbled surged rallied sank slid climbed
    agreed agrees signed signs won wins lost loses bought buys sold sells hires hired sinks
    sank leads led drags dragged weighs weighed recalls recalled expands opens closes
    """.split()
)
FIRST_NAMES = frozenset(
    """
    harrison michael tom henry tim john james robert david richard william mary patricia
    jennifer linda elizabeth barbara susan jessica sarah karen nancy lisa betty sandra
    ashley emily donna michelle carol amanda melissa deborah stephanie rebecca laura helen
    sharon cynthia kathleen amy shirley angela anna ruth brenda pamela nicole katherine
    samantha christine emma catherine debra rachel carolyn janet maria heather diane julie
    joyce victoria kelly christina joan evelyn lauren judith olivia frances martha cheryl
    megan andrea hannah jacqueline ann jean alice kathryn gloria teresa doris sara janice
    julia marie madison grace judy theresa beverly denise marilyn amber danielle abigail
    brittany rose diana natalie sophia alexis lori kayla jane charles joseph thomas
    christopher daniel matthew anthony mark donald steven paul andrew joshua kenneth kevin
    brian george edward ronald jason jeffrey ryan jacob gary nicholas eric jonathan stephen
    larry justin scott brandon benjamin samuel frank gregory raymond alexander patrick jack
    dennis jerry tyler aaron jose adam nathan douglas zachary peter kyle walter ethan jeremy
    harold keith christian roger noah gerald carl terry sean austin arthur lawrence jesse
    dylan bryan joe jordan billy bruce albert willie gabriel logan alan juan wayne roy ralph
    randy eugene vincent russell elijah louis bobby philip johnny piers gordon warren elon
    jeff bill steve larry sergey mukesh gautam ratan
    """.split()
)
RATING_VERBS = frozenset(
    """
    upgrade upgrades upgraded downgrade downgrades downgraded initiate initiates initiated
    reiterate reiterates reiterated rate rates rated raise raises raised lift lifts lifted
    trim trims trimmed lower lowers lowered boost boosts boosted cut cuts resume resumes
    resumed reaffirm reaffirms reaffirmed maintain maintains maintained assign assigns
    start starts started coverage target targets pt
    """.split()
)
# Present or past forms a rater uses on another company ("Wells Fargo downgrades Netflix").
ACTIVE_RATING_VERBS = RATING_VERBS - {"target", "targets", "pt", "coverage", "start", "rate"}
SAYS = frozenset(
    "says said sees predicts thinks analyst analysts strategist strategists economist "
    "economists".split()
)
IDIOMS = re.compile(
    r"\boracle of omaha\b|\bbig apple\b|\bapple of (?:my|his|her|their|our|your) eye\b"
    r"|\bshell (?:company|companies|shock(?:ed)?|game|corporation|firm)s?\b|\bsage advice\b"
    r"|\bnext (?:week|month|year|quarter|day|time|generation|step|steps)\b"
    r"|\bvisa (?:application|applications|requirements?|waiver|free|holders?)\b"
    r"|\btarget (?:date|audience|price|prices|range|rate)\b|\bcoke (?:oven|ovens)\b",
    re.IGNORECASE,
)
EXCHANGES = {
    "NASDAQ": "NASDAQ",
    "NYSE": "NYSE",
    "NYSEARCA": "NYSE",
    "NYSEAMERICAN": "NYSE",
    "AMEX": "NYSE",
    "LON": "LON",
    "LSE": "LON",
    "ETR": "ETR",
    "XETRA": "ETR",
    "FRA": "FRA",
    "EPA": "EPA",
    "AMS": "AMS",
    "BME": "BME",
    "EBR": "EBR",
    "STO": "STO",
    "HEL": "HEL",
    "SWX": "SWX",
    "VTX": "SWX",
    "TYO": "TYO",
    "TSE": "TYO",
    "BIT": "BIT",
    "CPH": "CPH",
    "OSL": "OSL",
    "TSX": "TSX",
    "ASX": "ASX",
    "HKG": "HKG",
}
_QUALIFIED = re.compile(
    r"\b(" + "|".join(EXCHANGES) + r")\s*:\s*\$?([A-Z0-9][A-Z0-9.\-]{0,9}[A-Z0-9]|[A-Z0-9])\b"
)
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:[.\-][A-Za-z]{1,2})?)\b")
_SUFFIXED = re.compile(
    r"(?<![\w$.])([A-Z0-9]{1,6}(?:-[A-Z])?\.(?:L|DE|PA|AS|MI|MC|ST|HE|SW|T|BR|CO|OL|TO|AX|HK))\b"
)
# Reuters instrument codes in wire copy: <AMZN.O>, <F.N>, <BARC.L>, <VOWG_p.DE>.
_RIC = re.compile(r"<([A-Z0-9]{1,6})(?:_[a-z])?\.([A-Z]{1,2})>")
_SYMBOL = re.compile(r"(?<![\w$])([A-Z]{1,5})(?![\w])")
PASSIVE_NEXT = frozenset({"at", "by", "to", "from", "on", "as", "after", "amid"})
_TOKEN = re.compile(r"[^\W_]+(?:[&'’.\-][^\W_]+)*|&")
_SENTENCE_END = re.compile(r"[.!?:;]\s*$|^\s*$")
MAX_ALIAS_TOKENS = 6
CUE_WINDOW = 6


@dataclass(frozen=True)
class Mention:
    start: int  # offset in the text
    company: str  # canonical id
    text: str  # the words that named it
    role: str = "about"  # about | rater


class TickerExtractor:
    """Finds companies in texts; one per process per universe (build the universe once)."""

    name = "companies"

    def __init__(
        self,
        extra: Mapping[str, Sequence[str]] | None = None,
        *,
        user_file: Path | None = None,
        universe: Universe | None = None,
    ) -> None:
        self.universe = universe if universe is not None else load_universe(extra, user_file)
        self.version = f"2:{self.universe.version}"
        self.symbols = frozenset(self.universe.by_symbol)
        self._names: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for company in self.universe.companies.values():
            for alias in company.aliases:
                tokens = tuple(t.lower() for t in _tokens(alias))
                if not tokens or (len(tokens) == 1 and tokens[0] in GENERIC_NAMES):
                    continue
                self._names.setdefault(tokens[:MAX_ALIAS_TOKENS], []).append((company.id, alias))

    def extract(self, text: str, among: Collection[str] = ()) -> list[str]:
        """Companies the text is about, in order of first mention, each once. ``among``:
        companies already known to be in the larger text this is a part of (a clause), whose
        names then need no context ("Apple" in "Apple and Microsoft rose")."""
        found: dict[str, int] = {}
        for mention in self.mentions(text, among):
            if mention.role == "about":
                found.setdefault(mention.company, mention.start)
        return [t for t, _ in sorted(found.items(), key=lambda kv: kv[1])]

    def names_in(self, text: str, among: Collection[str] = ()) -> list[str]:
        """The words that named a company ("$AAPL", "Apple's"), for clause splitting."""
        return [m.text for m in self.mentions(text, among)]

    def company(self, company_id: str) -> Company | None:
        return self.universe.get(company_id)

    def mentions(self, text: str, among: Collection[str] = ()) -> list[Mention]:
        """Every mention with its role, in text order."""
        folded = fold(text)
        if len(folded) != len(text):  # folding changed offsets: match on the original
            folded = text
        symbols = self._symbol_mentions(folded)
        by_symbol = frozenset(m.company for m in symbols)
        out = symbols + self._name_mentions(folded, frozenset(among), by_symbol)
        out.sort(key=lambda m: m.start)
        return _with_roles(folded, _dedupe(out))

    def _symbol_mentions(self, text: str) -> list[Mention]:
        out = []
        taken: list[tuple[int, int]] = []
        for m in _QUALIFIED.finditer(text):
            exchange, code = EXCHANGES[m.group(1)], m.group(2).upper()
            company = self._one(f"{exchange}:{code}") or self._one(code)
            if company:
                out.append(Mention(m.start(), company, m.group(0)))
                taken.append(m.span())
        for m in _CASHTAG.finditer(text):
            # A cashtag names a listing even when the universe lacks it ($BYND): kept as is.
            code = m.group(1).upper()
            company = self._one(code) or self._one(code.replace("-", ".")) or code
            out.append(Mention(m.start(), company, m.group(0)))
        for m in _RIC.finditer(text):
            code, place = m.group(1), m.group(2)
            company = self._one(f"{code}.{place}") or (
                self._one(code) if place in ("N", "O", "OQ", "K", "A", "P") else None
            )
            if company:
                out.append(Mention(m.start(), company, m.group(0)))
                taken.append(m.span())
        for m in _SUFFIXED.finditer(text):
            if not _inside(m.start(), taken) and (company := self._one(m.group(1))):
                out.append(Mention(m.start(), company, m.group(0)))
                taken.append(m.span())
        letters = [c for c in text if c.isalpha()]
        shouting = bool(letters) and sum(c.isupper() for c in letters) / len(letters) > 0.6
        if not shouting:
            for m in _SYMBOL.finditer(text):
                code = m.group(1)
                if _inside(m.start(), taken) or code in AMBIGUOUS or code.lower() in COMMON_NAMES:
                    continue
                if (len(code) >= 3 or code in SHORT_SYMBOLS) and (company := self._one(code)):
                    out.append(Mention(m.start(), company, m.group(0)))
        return out

    def _one(self, symbol: str) -> str | None:
        ids = self.universe.by_symbol.get(symbol.upper())
        if not ids:
            return None
        if len(ids) == 1:
            return next(iter(ids))
        own = [i for i in ids if i == symbol.upper()]  # a primary listing beats an ADR code
        return own[0] if own else None

    def _name_mentions(
        self,
        text: str,
        known: frozenset[str] = frozenset(),
        by_symbol: frozenset[str] = frozenset(),
    ) -> list[Mention]:
        """``known``: companies whose names need no context here; ``by_symbol``: those the
        text also names by a symbol (context for an ordinary-word name)."""
        blocked = [m.span() for m in IDIOMS.finditer(text)]
        tokens = [
            (m.start(), m.end(), _strip_possessive(m.group(0))) for m in _TOKEN.finditer(text)
        ]
        lower = [t[2].lower() for t in tokens]
        out = []
        i = 0
        while i < len(tokens):
            matched = 0
            for n in range(min(MAX_ALIAS_TOKENS, len(tokens) - i), 0, -1):
                owners = self._names.get(tuple(lower[i : i + n]))
                if not owners:
                    continue
                ids = {company for company, _ in owners}
                if len(ids) != 1:
                    continue
                start, end = tokens[i][0], tokens[i + n - 1][1]
                if _inside(start, blocked):
                    continue
                company = next(iter(ids))
                if any(
                    self._accept(text, tokens, lower, i, n, company, a, company in known, by_symbol)
                    for _, a in owners
                ):
                    out.append(Mention(start, company, text[start:end]))
                    matched = n
                    break
            i += matched or 1
        return out

    def _accept(
        self,
        text: str,
        tokens: list[tuple[int, int, str]],
        lower: list[str],
        i: int,
        n: int,
        company: str,
        alias: str,
        known: bool = False,
        by_symbol: frozenset[str] = frozenset(),
    ) -> bool:
        written = [t[2] for t in tokens[i : i + n]]
        alias_tokens = _tokens(alias)
        # Short or all-caps names (BP, GSK, HSBC): exactly as listed, and then sure enough
        # unless the letters are also an everyday abbreviation (IT, CEO).
        if len(alias) <= 3 or alias.isupper():
            if written != [_strip_possessive(t) for t in alias_tokens]:
                return False
            if alias.isupper() and alias not in AMBIGUOUS:
                return True
        if i > 0 and lower[i - 1] in FIRST_NAMES and tokens[i - 1][2][:1].isupper():
            return False  # "Harrison Ford", "Michael Dell": a person
        if known:
            return True
        if n == 1 and lower[i] in CAPITALISED_NAMES:
            return written[0][:1].isupper()
        common = all(t in COMMON_NAMES or t in CUES or len(t) <= 3 for t in lower[i : i + n])
        if not common:
            return True
        if not written[0][:1].isupper():
            return False
        after = lower[i + n] if i + n < len(lower) else ""
        possessive = text[tokens[i + n - 1][1] - 2 : tokens[i + n - 1][1]] in ("'s", "’s")
        if possessive or after in NEXT_CUES or company in by_symbol:
            return True
        if _SENTENCE_END.search(text[: tokens[i][0]]):
            return False  # sentence-initial capital says nothing; a following cue was needed
        window = lower[max(0, i - CUE_WINDOW) : i] + lower[i + n : i + n + CUE_WINDOW]
        return any(w in CUES for w in window)


def _tokens(text: str) -> list[str]:
    return [_strip_possessive(t) for t in _TOKEN.findall(text)]


def _strip_possessive(token: str) -> str:
    return token[:-2] if token.endswith(("'s", "’s")) and len(token) > 2 else token


def _inside(offset: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= offset < b for a, b in spans)


def _dedupe(mentions: list[Mention]) -> list[Mention]:
    """One mention per place: a cashtag inside a qualified symbol is the same mention."""
    out: list[Mention] = []
    for m in mentions:
        if out and m.start < out[-1].start + len(out[-1].text) and m.company == out[-1].company:
            continue
        out.append(m)
    return out


def _rates_another(text: str, m: Mention, mentions: list[Mention]) -> bool:
    rest_start = m.start + len(m.text)
    words = list(_TOKEN.finditer(text[rest_start:]))[:3]
    for k, word in enumerate(words):
        if word.group(0).lower() not in ACTIVE_RATING_VERBS:
            continue
        following = words[k + 1].group(0).lower() if k + 1 < len(words) else ""
        if following in PASSIVE_NEXT:
            return False
        verb_end = rest_start + word.end()
        clause_end = re.search(r"[;.!?]|\b(?:and|while|but)\b", text[verb_end:])
        limit = verb_end + (clause_end.start() if clause_end else len(text))
        return any(
            o.company != m.company and verb_end <= o.start < min(limit, verb_end + 60)
            for o in mentions
        )
    return False


def _with_roles(text: str, mentions: list[Mention]) -> list[Mention]:
    """Mark raters: "X downgraded at/by R", "R downgrades X", "R says …", "according to R"."""
    if len({m.company for m in mentions}) < 2:
        return mentions
    out = []
    for m in mentions:
        before = [t.lower() for t in _TOKEN.findall(text[: m.start])][-6:]
        after = [t.lower() for t in _TOKEN.findall(text[m.start + len(m.text) :])][:4]
        others = any(o.company != m.company and o.start > m.start for o in mentions)
        passive = (
            bool(before)
            and before[-1] in ("at", "by")
            and any(w in RATING_VERBS for w in before[:-1])
        )
        # Active voice: "R downgrades X", "R raises its price target on X": a rating verb
        # right after R, then another company before the clause ends; not "R raised its
        # outlook" (no one else) nor "X downgraded to sell" (to/at/by follow).
        active = others and _rates_another(text, m, mentions)
        quoted = (bool(before) and before[-2:] == ["according", "to"]) or (
            bool(after) and after[0] in SAYS and any(o.company != m.company for o in mentions)
        )
        rater = passive or active or quoted
        out.append(Mention(m.start, m.company, m.text, "rater" if rater else "about"))
    if all(m.role == "rater" for m in out):  # nothing else is talked about: not raters
        return mentions
    return out
