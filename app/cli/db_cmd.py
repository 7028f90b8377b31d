"""`simmim db ...`: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.context import console, state
from simmim import migrations
from simmim.db import display_url

app = typer.Typer()  # merged into the root app by app.cli


db_app = typer.Typer(
    help="Database schema: upgrade, downgrade, show the revision.", no_args_is_help=True
)
app.add_typer(db_app, name="db")


@db_app.command()
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    cli = state(ctx)
    before = migrations.current_revision(cli.engine)
    migrations.upgrade(cli.engine, revision)
    console.print(f"{before or 'empty'} -> {migrations.current_revision(cli.engine)}")


@db_app.command()
def downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' drops every table.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Revert migrations down to REVISION. Data in dropped tables is lost."""
    cli = state(ctx)
    if not yes:
        typer.confirm(
            f"Downgrade {display_url(cli.engine)} to {revision}?",
            abort=True,
        )
    before = migrations.current_revision(cli.engine)
    migrations.downgrade(cli.engine, revision)
    console.print(f"{before or 'empty'} -> {migrations.current_revision(cli.engine) or 'empty'}")


@db_app.command()
def current(ctx: typer.Context) -> None:
    """Show the database's schema revision and whether it is up to date."""
    cli = state(ctx)
    revision = migrations.current_revision(cli.engine)
    head = migrations.head_revision(cli.settings.database_url)
    status = "up to date" if revision == head else f"behind head {head}: run `simmim db upgrade`"
    console.print(f"{display_url(cli.engine)}: {revision or 'empty'} ({status})")
