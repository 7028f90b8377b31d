"""The root Typer app, its global options, and the state handed to every command."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from simmim.db import make_engine
from simmim.logs import configure_logging
from simmim.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="simmim",
    help="SimMIM: search crawled images and text, watch financial sentiment, get alerts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@dataclass
class CliState:
    """Built once per invocation; settings are read only when a command needs them."""

    config_file: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url, echo=self.settings.database.echo)
        return self._engine


def new_table(*columns: str, title: str | None = None) -> Table:
    """A table whose cells wrap instead of being cut: output piped to a file stays complete."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


def ready_state(ctx: typer.Context) -> CliState:
    """The state, for commands that need the database at the current schema."""
    from simmim import migrations

    cli = state(ctx)
    migrations.require_head(cli.engine)
    return cli


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML settings file (default: $SIMMIM_CONFIG)."),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Debug logging and full tracebacks.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    configure_logging("INFO" if verbose else "WARNING", debug=debug)
    ctx.obj = CliState(config_file=config)


def register() -> None:
    # Imported for their side effect of adding commands to `app`.
    from simmim.cli import (  # noqa: F401
        alerts_cmd,
        config_cmd,
        dashboard_cmd,
        db_cmd,
        demo_cmd,
        index_cmd,
        init_cmd,
        monitor_cmd,
        source_cmd,
        status_cmd,
        train_cmd,
    )


register()
