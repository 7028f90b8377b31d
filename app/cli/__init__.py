"""The ``simmim`` command line: a root Typer app that adds one app per command module."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from app.cli import (
    alerts_cmd,
    companies_cmd,
    config_cmd,
    dashboard_cmd,
    db_cmd,
    demo_cmd,
    eval_cmd,
    images_cmd,
    index_cmd,
    init_cmd,
    monitor_cmd,
    serve_cmd,
    source_cmd,
    status_cmd,
    token_cmd,
    topics_cmd,
    train_cmd,
    worker_cmd,
)
from app.cli.context import CliState, err_console
from simmim.errors import SimmimError
from simmim.logs import configure_logging
from simmim.redact import mask_text

__all__ = ["app", "main"]

app = typer.Typer(
    name="simmim",
    help="SimMIM: search crawled images and text, watch financial sentiment, get alerts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
for _module in (
    init_cmd,
    status_cmd,
    config_cmd,
    db_cmd,
    source_cmd,
    index_cmd,
    images_cmd,
    monitor_cmd,
    worker_cmd,
    alerts_cmd,
    companies_cmd,
    topics_cmd,
    train_cmd,
    eval_cmd,
    dashboard_cmd,
    serve_cmd,
    token_cmd,
    demo_cmd,
):
    app.add_typer(_module.app)


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


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: expected errors become one line and a non-zero exit, never a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        app(args=args, prog_name="simmim")
    except SimmimError as exc:
        if debug:
            raise
        err_console.print(
            f"[bold red]error:[/] {mask_text(str(exc))}", highlight=False, soft_wrap=True
        )
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        err_console.print(
            f"[bold red]unexpected error:[/] {type(exc).__name__}: {mask_text(str(exc))} "
            "(rerun with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
