"""The ``simmim`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from simmim.cli.app import app, err_console
from simmim.errors import SimmimError

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: expected errors become one line and a non-zero exit, never a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        app(args=args, prog_name="simmim")
    except SimmimError as exc:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        err_console.print(
            f"[bold red]unexpected error:[/] {type(exc).__name__}: {exc} "
            "(rerun with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
