"""`simmim companies list|search|add|import`: the companies the monitor recognises."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.context import console, new_table, state

app = typer.Typer()  # merged into the root app by app.cli
companies_app = typer.Typer(help="The company universe behind ticker trends.", no_args_is_help=True)
app.add_typer(companies_app, name="companies")


def _print(companies: list, title: str) -> None:  # type: ignore[type-arg]
    table = new_table("id", "name", "aliases", "symbols", "indices", "source", title=title)
    for c in companies:
        table.add_row(
            c.id,
            c.name,
            ", ".join(c.aliases[:6]) + (" …" if len(c.aliases) > 6 else ""),
            ", ".join(c.symbols[:5]) + (" …" if len(c.symbols) > 5 else ""),
            ", ".join(c.indices),
            c.source,
        )
    console.print(table if companies else "no company matches")


@companies_app.command("list")
def list_(
    ctx: typer.Context,
    index: Annotated[str | None, typer.Option("--index", help="e.g. 'FTSE 100', DAX.")] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="listed | known | settings | user")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
) -> None:
    """Companies in the universe (id order), optionally of one index or source."""
    from monitor.companies import company_table

    universe = company_table(state(ctx).settings)
    chosen = [
        c
        for c in sorted(universe.companies.values(), key=lambda c: c.id)
        if (index is None or index.lower() in (i.lower() for i in c.indices))
        and (source is None or c.source == source)
    ]
    _print(chosen[:limit], f"{len(chosen)} of {len(universe)} companies")


@companies_app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="A name, alias or symbol (any part).")],
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
) -> None:
    """Find companies by name, alias or symbol, best match first."""
    from monitor.companies import search_companies

    _print(search_companies(state(ctx).settings, query, limit), f"matches for {query!r}")


@companies_app.command("add")
def add(
    ctx: typer.Context,
    ticker: Annotated[str, typer.Argument(help="Its id in trends, e.g. ACME or ACME.L.")],
    name: Annotated[str, typer.Option("--name", help="The company's name.")],
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="Another name people write (repeat).")
    ] = None,
) -> None:
    """Add one of your own companies (or more names for a listed one)."""
    from monitor.companies import add_company

    company = add_company(state(ctx).settings, ticker, name, alias or [])
    console.print(
        f"added {company.id} ({', '.join(company.aliases)}); run `simmim monitor rescore` "
        "to re-tag items scored before"
    )


@companies_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with ticker,name[,aliases] (';'-separated).")],
) -> None:
    """Import your own companies from a CSV file into the data directory's table."""
    from monitor.companies import import_company_file

    companies = import_company_file(state(ctx).settings, file)
    console.print(
        f"imported {len(companies)} compan{'y' if len(companies) == 1 else 'ies'}; "
        "run `simmim monitor rescore` to re-tag items scored before"
    )
