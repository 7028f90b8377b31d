"""`simmim worker`: take the monitor's steps as tasks from PostgreSQL, beside other workers."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.context import err_console, ready_state

app = typer.Typer()  # merged into the root app by app.cli


@app.command("worker")
def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", min=1, help="Tasks at once (default worker.concurrency)."),
    ] = None,
    queues: Annotated[
        str,
        typer.Option("--queues", help="Comma-separated: crawl, index, score, notify."),
    ] = "crawl,index,score,notify",
    name: Annotated[str | None, typer.Option("--name", help="Shown in monitor status.")] = None,
) -> None:
    """Run tasks until Ctrl-C / SIGTERM (the running task finishes first).

    Start as many as you like, on any machine that reaches the same PostgreSQL database and
    data directory: each periodic step runs once per due time, encoding spreads over all of
    them, the index has one writer at a time. Needs PostgreSQL (`simmim init` creates the
    queue's tables); with SQLite use `simmim monitor run`."""
    from monitor.cycle import Runtime
    from monitor.steps import scheduled
    from monitor.worker.run import run_worker
    from monitor.worker.schedule import nearest_period
    from monitor.worker.tasks import QUEUES, conninfo

    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(chosen) - set(QUEUES))
    if unknown or not chosen:
        raise typer.BadParameter(
            f"unknown queue(s) {', '.join(unknown) or '(none given)'}; use {', '.join(QUEUES)}",
            param_hint="--queues",
        )
    cli = ready_state(ctx)
    conninfo(cli.settings.database_url)  # SQLite: say so now, with what to do
    runtime = Runtime(cli.settings, cli.engine)
    if name:
        runtime.runner = name[:120]
    periods = {
        step: nearest_period(seconds)[0] for step, seconds in scheduled(cli.settings).items()
    }
    err_console.print(
        f"worker {runtime.runner} on queues {', '.join(chosen)}; periodic steps: "
        + ", ".join(f"{step} every {s}s" for step, s in periods.items())
        + "; Ctrl-C stops after the running task"
    )
    run_worker(runtime, queues=chosen, concurrency=concurrency)
    err_console.print("worker stopped")
