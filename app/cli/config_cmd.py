"""`simmim config show`: the effective settings, secrets masked."""

from __future__ import annotations

import json

import typer

from app.cli.context import console, state
from simmim.settings import masked_dump

app = typer.Typer()  # merged into the root app by app.cli


config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command()
def show(ctx: typer.Context) -> None:
    """Print the effective settings (file, environment and defaults merged) as JSON.

    Also shows the encoder fingerprint: the model identity every stored vector carries.
    """
    from encoder.fingerprint import model_fingerprint

    settings = state(ctx).settings
    shown = masked_dump(settings)
    shown["encoder_fingerprint"] = model_fingerprint(settings.encoder)
    console.print_json(json.dumps(shown))
