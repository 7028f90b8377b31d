"""What every command shares: the per-invocation state, the consoles, tables, readiness."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from simmim import migrations
from simmim.db import make_engine
from simmim.settings import Settings, load_settings

if TYPE_CHECKING:
    from encoder import Encoder

console = Console()
err_console = Console(stderr=True)


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
    cli = state(ctx)
    migrations.require_head(cli.engine)
    return cli


def serving_encoder(settings: Settings) -> Encoder:
    """The configured model with the fusion the live index was built with (which
    self-training may have switched), as the API, dashboard and workers use it."""
    from encoder import load_encoder
    from indexer.live_fusion import following_index

    return following_index(settings, load_encoder(settings))


def folded_label(also_in: list[str], duplicates: list[int]) -> str:
    """A search result's folded copies: their other sources, else how many copies."""
    return ", ".join(also_in) or (f"+{len(duplicates)} copies" if duplicates else "")
