"""`simmim init`: make a data directory usable in one step."""

from __future__ import annotations

import typer

from app.cli.context import console, state
from simmim import migrations
from simmim.db import display_url
from simmim.paths import DataLayout

app = typer.Typer()  # merged into the root app by app.cli


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the data directory and bring the database to the latest schema."""
    cli = state(ctx)
    settings = cli.settings
    layout = DataLayout(settings.data_dir)
    created = layout.create()
    before = migrations.current_revision(cli.engine)
    migrations.upgrade(cli.engine)
    after = migrations.current_revision(cli.engine)

    console.print(
        f"data directory  {layout.root}" + ("  (created)" if layout.root in created else "")
    )
    console.print(f"database        {display_url(cli.engine)}")
    if before == after:
        console.print(f"schema          {after} (already up to date)")
    else:
        console.print(f"schema          {before or 'empty'} -> {after}")
    console.print("next            add a source: simmim source add URL --kind rss")
