"""The company universe and the extractor on it: aliases, ambiguity, roles, the user's own
companies (add, import) and re-tagging after a change. A tiny hand-made universe keeps each
case explicit; one test checks the shipped one is the whole listed market."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.companies import (
    Company,
    Universe,
    add_company,
    company_table,
    import_company_file,
    make_company,
)
from monitor.company_names import name_variants
from monitor.tickers import TickerExtractor
from simmim.errors import ConfigError
from simmim.settings import Settings


def _company(cid: str, name: str, *more: str, symbols: tuple[str, ...] = ()) -> Company:
    variants = sorted({v for n in (name, *more) for v in name_variants(n)})
    return Company(cid, name, tuple(variants), symbols)


@pytest.fixture(scope="module")
def tiny() -> TickerExtractor:
    universe = Universe(
        {
            c.id: c
            for c in (
                _company("BARC.L", "Barclays PLC", symbols=("LON:BARC", "BCS", "NYSE:BCS")),
                _company("DB1.DE", "Deutsche Börse AG"),
                _company("SN.L", "Smith & Nephew plc"),
                _company("NXT.L", "Next plc", symbols=("LON:NXT",)),
                _company("FRD", "Ford Motor Company", "Ford"),
                _company("WFC", "Wells Fargo & Company"),
                _company("NFLX", "Netflix, Inc."),
                _company("ORCL", "Oracle Corporation", "Oracle"),
                _company("GSK.L", "GSK plc", "GlaxoSmithKline", "GSK"),
                _company("KGF.L", "Kingfisher plc"),
            )
        }
    )
    return TickerExtractor(universe=universe)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # legal forms dropped, possessives, "&"/"and", accents folded both ways
        ("Barclays shares rise", ["BARC.L"]),
        ("Barclays' rivals and Barclays's profit", ["BARC.L"]),
        ("Smith and Nephew hip implants", ["SN.L"]),
        ("Deutsche Boerse and Deutsche Borse and Deutsche Börse", ["DB1.DE"]),
        ("GlaxoSmithKline, now GSK, wins approval", ["GSK.L"]),  # a former name: one id
        # symbols in the forms people write, one canonical id
        ("$BCS up 2%", ["BARC.L"]),
        ("(LON:BARC) and BARC.L and NYSE: BCS", ["BARC.L"]),
        ("Wire copy: lender <BARC.L> fell", ["BARC.L"]),
        ("$ZZZQ rips higher", ["ZZZQ"]),  # a cashtag outside the universe still counts
        # ordinary words need context
        ("Next shares jump after Christmas trading", ["NXT.L"]),
        ("Next week the Fed meets", []),
        ("what comes next is anyone's guess", []),
        ("Sales at Next rose 5% in the quarter", ["NXT.L"]),
        ("Harrison Ford stars in a new film", []),  # a person
        ("Ford recalls 200,000 vehicles", ["FRD"]),
        ("The Oracle of Omaha bought more stock", []),  # an idiom
        ("a kingfisher dived into the river", []),
        ("Kingfisher's DIY sales slide", ["KGF.L"]),
        ("BARCLAYS PROFIT FALLS", ["BARC.L"]),  # a shout keeps names, not bare symbols
    ],
)
def test_forms_and_context(tiny: TickerExtractor, text: str, expected: list[str]) -> None:
    assert tiny.extract(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Netflix downgraded at Wells Fargo",
        "Wells Fargo downgrades Netflix to underweight",
        "Wells Fargo cuts its price target on Netflix",
        "Netflix cut to sell by Wells Fargo",
        "Wells Fargo analysts say Netflix subscriber growth is slowing",
    ],
)
def test_the_rater_is_not_what_the_text_is_about(tiny: TickerExtractor, text: str) -> None:
    assert tiny.extract(text) == ["NFLX"]
    roles = {m.company: m.role for m in tiny.mentions(text)}
    assert roles == {"NFLX": "about", "WFC": "rater"}


def test_a_company_acting_on_itself_is_no_rater(tiny: TickerExtractor) -> None:
    assert tiny.extract("Wells Fargo raised its outlook; Netflix cut its forecast") == [
        "WFC",
        "NFLX",
    ]
    assert tiny.extract("Wells Fargo profit rises") == ["WFC"]


def test_clauses_keep_a_known_company_without_its_context(tiny: TickerExtractor) -> None:
    """In "Next and Ford rose" the clause "Next" alone has no cue; the whole text had one."""
    assert tiny.extract("Next") == []
    assert tiny.extract("Next", among=["NXT.L"]) == ["NXT.L"]


def test_user_companies_add_import_and_errors(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    before = company_table(settings)
    assert before.get("ACME") is None
    added = add_company(settings, "acme", "Acme Widgets plc", ["Acme", "Acme Group"])
    assert added.id == "ACME" and "Acme Widgets" in added.aliases
    csv = tmp_path / "mine.csv"
    csv.write_text("ticker,name,aliases\nZED.L,Zedland Mining Oyj,Zedland;Zed Mining\n")
    [zed] = import_company_file(settings, csv)
    assert zed.id == "ZED.L"
    table = company_table(settings)
    assert table.version != before.version  # scores made before are now outdated
    extractor = TickerExtractor(universe=table)
    assert extractor.extract("Acme Widgets beats; Zedland Mining slumps") == ["ACME", "ZED.L"]
    assert table.search("zed")[0].id == "ZED.L"
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,title\nX,Y\n")
    with pytest.raises(ConfigError, match="needs a ticker"):
        import_company_file(settings, bad)
    bad.write_text("ticker,name\n,Nameless\n")
    with pytest.raises(ConfigError, match="line 2"):
        import_company_file(settings, bad)


def test_the_shipped_universe_is_the_listed_market() -> None:
    table = company_table(Settings())
    assert len(table) > 1500
    for name, cid in [
        ("Barclays", "BARC.L"),
        ("GlaxoSmithKline", "GSK.L"),
        ("Royal Bank of Scotland", "NWG.L"),
        ("Deutsche Boerse", "DB1.DE"),
        ("Nestle", "NESN.SW"),
        ("Apple", "AAPL"),
    ]:
        company = table.resolve(name)
        assert company is not None and company.id == cid, name
    assert "FTSE 100" in table.get("BARC.L").indices  # type: ignore[union-attr]


def test_make_company_folds_names() -> None:
    company = make_company("nes", "Nestlé S.A.", ["Nestle Group"])
    assert company.id == "NES" and {"Nestle", "Nestle S.A."} <= set(company.aliases)
