"""`simmim status`: what exists, at a glance."""

from __future__ import annotations

import typer
from rich.table import Table

from app.cli.context import console, state
from indexer.source_admin import corpus_counts
from simmim import migrations
from simmim.db import display_url, session_factory, session_scope
from simmim.paths import DataLayout

app = typer.Typer()  # merged into the root app by app.cli


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the data directory, database schema, and how many sources and items exist."""
    cli = state(ctx)
    settings = cli.settings
    migrations.require_head(cli.engine)
    with session_scope(session_factory(cli.engine)) as session:
        counts = corpus_counts(session)

    table = Table(show_header=False, box=None)
    table.add_row("data directory", str(settings.data_dir))
    table.add_row("database", display_url(cli.engine))
    table.add_row("schema", f"{migrations.current_revision(cli.engine)} (up to date)")
    table.add_row("encoder", f"{settings.encoder.model} / {settings.encoder.pretrained}")
    table.add_row("sources", f"{counts.sources} ({counts.enabled_sources} enabled)")
    items = ", ".join(
        f"{count} {name.value}" for name, count in sorted(counts.items_by_status.items())
    )
    table.add_row("items", items or "none yet")
    from encoder.train.evaluation import last_report  # torch: only when this command runs

    last = last_report(DataLayout(settings.data_dir))
    if last is not None:
        table.add_row(
            "retrieval",
            f"R@5 {last.fused_r5:.3f} fused text→item ({last.fusion}; CLIP mean "
            f"{last.mean_r5:.3f}) on {last.n} held-out items, {last.at}",
        )
    from indexer.fusion_switch import fusion_status

    table.add_row("fusion", fusion_status(settings, cli.engine).line())
    console.print(table)
