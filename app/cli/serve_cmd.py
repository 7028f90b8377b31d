"""`simmim serve`: the HTTP API on uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from app.cli.context import err_console, ready_state, state

app = typer.Typer()  # merged into the root app by app.cli


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address (default api.host, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes (default api.workers).")
    ] = None,
) -> None:
    """Serve the HTTP API until Ctrl-C / SIGTERM: /v1/…, /docs, /healthz, /readyz, /metrics.

    Create a token first: `simmim token create NAME --scope read|admin`."""
    import uvicorn

    cli = ready_state(ctx)
    config = cli.settings.api
    chosen_host, chosen_port = host or config.host, port or config.port
    processes = workers or config.workers
    if state(ctx).config_file is not None:  # uvicorn's worker processes read it too
        os.environ["SIMMIM_CONFIG"] = str(state(ctx).config_file)
    err_console.print(
        f"SimMIM API on http://{chosen_host}:{chosen_port} ({processes} process(es)); "
        f"docs at /docs; Ctrl-C stops"
    )
    uvicorn.run(
        "app.api.app:app_from_environment",
        factory=True,
        host=chosen_host,
        port=chosen_port,
        workers=processes,
        log_level="warning",
        proxy_headers=False,
    )
