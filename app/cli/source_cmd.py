"""`simmim source ...` and `simmim crawl`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from app.cli.context import console, new_table, ready_state
from simmim.db import session_factory, session_scope
from simmim.models import SourceKind
from simmim.redact import mask_text
from simmim.timefmt import ago

if TYPE_CHECKING:
    from indexer.crawl import SourceOutcome

app = typer.Typer()  # merged into the root app by app.cli


source_app = typer.Typer(
    help="Sources to crawl: add, list, remove, enable, disable.", no_args_is_help=True
)
app.add_typer(source_app, name="source")


@source_app.command("add")
def add(
    ctx: typer.Context,
    location: Annotated[str, typer.Argument(help="Feed/page URL, folder path, or JSONL path/URL.")],
    kind: Annotated[SourceKind, typer.Option("--kind", help="rss, page, folder or jsonl.")],
    every: Annotated[
        str, typer.Option("--every", help="Crawl interval: 30s, 15m, 2h, 1d.")
    ] = "15m",
    name: Annotated[str | None, typer.Option("--name", help="Defaults to host + path.")] = None,
) -> None:
    """Register a source to crawl."""
    from indexer.source_admin import add_source, parse_every

    cli = ready_state(ctx)
    with session_scope(session_factory(cli.engine)) as session:
        source = add_source(
            session,
            location,
            kind,
            every_s=parse_every(every),
            name=name,
            local_roots=cli.settings.crawler.local_roots,
        )
        console.print(f"added source {source.id} {source.name!r} ({kind.value}, every {every})")


@source_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Sources with their health."""
    from indexer.source_admin import list_sources

    cli = ready_state(ctx)
    table = new_table(
        "id", "name", "kind", "on", "items", "last success", "failures", "last error", "next due"
    )
    with session_scope(session_factory(cli.engine)) as session:
        for source, items in list_sources(session):
            table.add_row(
                str(source.id),
                source.name,
                source.kind.value,
                "yes" if source.enabled else "no",
                f"{items} (+{source.read_remaining} to read)"
                if source.read_remaining
                else str(items),
                ago(source.last_success_at),
                str(source.consecutive_failures),
                mask_text(source.last_error or "-")[:60],
                ago(source.next_due_at) if source.enabled else "-",
            )
    console.print(table)


def _switch(ctx: typer.Context, ref: str, enabled: bool | None) -> None:
    from indexer.source_admin import set_source_enabled
    from monitor.rollup import remove_source

    cli = ready_state(ctx)
    with session_scope(session_factory(cli.engine)) as session:
        if enabled is None:
            source = remove_source(session, ref)
            console.print(f"removed source {source.id} {source.name!r} and its items")
        else:
            source = set_source_enabled(session, ref, enabled)
            console.print(
                f"source {source.id} {source.name!r} {'enabled' if enabled else 'disabled'}"
            )


@source_app.command()
def remove(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="Source id or name.")]
) -> None:
    """Delete a source and every item crawled from it."""
    _switch(ctx, ref, None)


@source_app.command()
def enable(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="Source id or name.")]
) -> None:
    """Crawl this source again."""
    _switch(ctx, ref, True)


@source_app.command()
def disable(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="Source id or name.")]
) -> None:
    """Stop crawling this source (its items stay)."""
    _switch(ctx, ref, False)


@app.command("crawl")
def crawl_command(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Source id or name (repeatable).")
    ] = None,
    due: Annotated[
        bool, typer.Option("--due", help="Only sources whose next crawl is due.")
    ] = False,
    until_done: Annotated[
        bool,
        typer.Option(
            "--until-done",
            help="Crawl again the sources with records left (a dump, a folder, a long "
            "feed) until none has: a big file loads in one command.",
        ),
    ] = False,
) -> None:
    """Crawl enabled sources now (or the ones named) and summarise what came in. Exits 1
    when every source crawled failed."""
    from indexer.crawl import crawl, crawl_until_done
    from indexer.source_admin import find_source
    from simmim.locks import run_lock

    cli = ready_state(ctx)
    ids = None
    if source:
        with session_scope(session_factory(cli.engine)) as session:
            ids = [find_source(session, ref).id for ref in source]
    with run_lock(cli.engine, "crawl"), Progress(console=console, transient=True) as progress:
        task = progress.add_task("crawling", total=None)
        if until_done:
            read = 0

            def after_round(round_outcomes: list[SourceOutcome]) -> None:
                nonlocal read
                read += sum(o.new + o.duplicate + o.failed for o in round_outcomes)
                left = sum(o.remaining or 0 for o in round_outcomes if o.ok)
                progress.update(
                    task,
                    completed=read,
                    total=read + left,
                    description=f"crawling: {read} records read, {left} left",
                )

            outcomes = crawl_until_done(
                cli.settings, cli.engine, source_ids=ids, due_only=due, on_round=after_round
            )
        else:
            outcomes = crawl(
                cli.settings,
                cli.engine,
                source_ids=ids,
                due_only=due,
                on_done=lambda o: progress.advance(task),
            )
    if not outcomes:
        console.print("no source to crawl: add one with `simmim source add URL --kind rss`")
        return
    table = new_table(
        "source", "status", "new", "duplicate", "failed", "left", "reasons", title="crawl"
    )
    for o in outcomes:
        status = "ok" if o.ok else f"failed: {o.error}"
        if o.not_modified:
            status = "not modified"
        reasons = ", ".join(f"{reason} x{count}" for reason, count in o.reasons.most_common())
        table.add_row(
            o.name,
            status[:70],
            str(o.new),
            str(o.duplicate),
            str(o.failed),
            str(o.remaining or "-"),
            reasons[:80] or "-",
        )
    console.print(table)
    console.print(
        f"{sum(o.new for o in outcomes)} new, {sum(o.duplicate for o in outcomes)} duplicate, "
        f"{sum(o.failed for o in outcomes)} failed, {sum(not o.ok for o in outcomes)} source(s) failed"
    )
    left = sum(o.remaining or 0 for o in outcomes if o.ok)
    if left and not until_done:
        console.print(f"{left} record(s) left for the next crawls (or `simmim crawl --until-done`)")
    if all(not o.ok for o in outcomes):
        raise typer.Exit(1)
