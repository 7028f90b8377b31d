"""`simmim status`: what exists, at a glance."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy import func, select

from simmim import migrations
from simmim.cli.app import app, console, state
from simmim.db import session_factory, session_scope
from simmim.models import Item, Source


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the data directory, database schema, and how many sources and items exist."""
    cli = state(ctx)
    settings = cli.settings
    migrations.require_head(cli.engine)
    with session_scope(session_factory(cli.engine)) as session:
        sources = session.scalar(select(func.count(Source.id))) or 0
        enabled = session.scalar(select(func.count(Source.id)).where(Source.enabled)) or 0
        by_status = dict(
            session.execute(select(Item.status, func.count(Item.id)).group_by(Item.status)).all()
        )

    table = Table(show_header=False, box=None)
    table.add_row("data directory", str(settings.data_dir))
    table.add_row("database", cli.engine.url.render_as_string(hide_password=True))
    table.add_row("schema", f"{migrations.current_revision(cli.engine)} (up to date)")
    table.add_row("encoder", f"{settings.encoder.model} / {settings.encoder.pretrained}")
    table.add_row("sources", f"{sources} ({enabled} enabled)")
    items = ", ".join(f"{count} {name.value}" for name, count in sorted(by_status.items()))
    table.add_row("items", items or "none yet")
    console.print(table)
