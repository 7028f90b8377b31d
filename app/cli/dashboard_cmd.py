"""`simmim dashboard`: the Streamlit app, on this machine's settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from app.cli.context import err_console, state
from simmim.files import atomic_write_bytes
from simmim.settings import OidcSettings

app = typer.Typer()  # merged into the root app by app.cli

LOCAL_ADDRESSES = ("localhost", "127.0.0.1", "::1")


def app_file() -> Path:
    import dashboard

    return Path(dashboard.__file__).parent / "app.py"


def streamlit_command(
    port: int, *, address: str = "localhost", secrets_file: Path | None = None
) -> list[str]:
    command = [
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
    if secrets_file is not None:
        command += ["--secrets.files", str(secrets_file)]
    return command


def write_oidc_secrets(oidc: OidcSettings, folder: Path) -> Path:
    """Streamlit's st.login reads its provider from secrets: write them from our settings,
    readable by this user only."""
    assert oidc.client_secret is not None and oidc.cookie_secret is not None
    values = {
        "redirect_uri": oidc.redirect_uri or "",
        "cookie_secret": oidc.cookie_secret.get_secret_value(),
        "client_id": oidc.client_id or "",
        "client_secret": oidc.client_secret.get_secret_value(),
        "server_metadata_url": oidc.server_metadata_url or "",
    }
    # A JSON string is a valid TOML basic string; the temp file atomic_write renames into
    # place is created with mode 600, so the secrets are never readable by others.
    text = "[auth]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    path = folder / "dashboard-secrets.toml"
    atomic_write_bytes(path, text.encode())
    return path


def run_until_stopped(command: list[str], env: dict[str, str]) -> int:
    """Run Streamlit as a child; SIGINT/SIGTERM to us go to it, and we wait for it to end."""
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # forwarded already; keep waiting for the child
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:
            child.kill()
            child.wait()


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
    mode = settings.dashboard.auth_mode
    if mode == "none" and address not in LOCAL_ADDRESSES:
        err_console.print(
            "warning: listening beyond localhost without SIMMIM_DASHBOARD__PASSWORD set"
        )
    if mode == "proxy" and address not in LOCAL_ADDRESSES:
        err_console.print(
            f"warning: trusting the {settings.dashboard.proxy_user_header} header while "
            f"listening on {address}: anyone who reaches this port directly can set it; "
            "listen on localhost behind the proxy"
        )
    secrets_file = (
        write_oidc_secrets(settings.dashboard.oidc, settings.data_dir) if mode == "oidc" else None
    )
    err_console.print(f"dashboard on http://{address}:{chosen} (Ctrl-C stops it)")
    command = streamlit_command(chosen, address=address, secrets_file=secrets_file)
    raise typer.Exit(run_until_stopped(command, env))
