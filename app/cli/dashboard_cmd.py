"""`simmim dashboard`: the Streamlit app, on this machine's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.cli.context import err_console, state

app = typer.Typer()  # merged into the root app by app.cli


def app_file() -> Path:
    import dashboard

    return Path(dashboard.__file__).parent / "app.py"


def streamlit_command(port: int, *, address: str = "localhost") -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_file()),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


@app.command("dashboard")
def dashboard_command(
    ctx: typer.Context,
    port: Annotated[
        int | None, typer.Option("--port", help="Default: dashboard.port (8501).")
    ] = None,
    address: Annotated[
        str, typer.Option("--address", help="Interface to listen on; 0.0.0.0 for all.")
    ] = "localhost",
) -> None:
    """Open the dashboard (search, trends, alerts, sources, system) in the browser."""
    from simmim import migrations
    from simmim.paths import DataLayout

    cli = state(ctx)
    settings = cli.settings
    DataLayout(settings.data_dir).create()
    migrations.upgrade(cli.engine)  # a first run shows empty pages, not a setup error
    chosen = port or settings.dashboard.port
    env = dict(os.environ)
    if cli.config_file is not None:
        env["SIMMIM_CONFIG"] = str(cli.config_file.resolve())
    if settings.dashboard.password is None and address not in ("localhost", "127.0.0.1"):
        err_console.print(
            "warning: listening beyond localhost without SIMMIM_DASHBOARD__PASSWORD set"
        )
    err_console.print(f"dashboard on http://{address}:{chosen} (Ctrl-C stops it)")
    try:
        code = subprocess.call(streamlit_command(chosen, address=address), env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
