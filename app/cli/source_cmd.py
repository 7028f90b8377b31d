"""`simmim source ...` and `simmim crawl`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from app.cli.context import CliState, console, new_table, ready_state
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
    import_now: Annotated[
        bool,
        typer.Option(
            "--import",
            help="A one-off load: read it all now (progress shown), then leave the source "
            "disabled so it is not crawled again (`simmim source enable` to watch it).",
        ),
    ] = False,
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
        if import_now:
            source.enabled = False  # the scheduler leaves it alone from the start
        source_id, source_name = source.id, source.name
    if not import_now:
        console.print(f"added source {source_id} {source_name!r} ({kind.value}, every {every})")
        return
    console.print(f"importing source {source_id} {source_name!r} ({kind.value})")
    outcomes = _crawl_with_progress(cli, [source_id], due_only=False, until_done=True)
    _print_outcomes(outcomes, until_done=True)
    console.print(
        f"source {source_name!r} left disabled: its items stay; "
        f"`simmim source enable {source_id}` crawls it every {every} from now on"
    )
    if all(not o.ok for o in outcomes):
        raise typer.Exit(1)


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


@source_app.command("failures")
def failures(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Source id or name.")],
    runs: Annotated[int, typer.Option("--runs", min=1, help="How many recent crawls.")] = 50,
) -> None:
    """The records of recent crawls that were not stored (dump line or URL, reason)."""
    from indexer.crawl import FAILURES_KEPT
    from indexer.source_admin import find_source, source_failures

    cli = ready_state(ctx)
    with session_scope(session_factory(cli.engine)) as session:
        found = source_failures(session, find_source(session, ref), runs=runs)
        name, last_error = found.source.name, found.source.last_error
    if last_error:
        console.print(f"last crawl error of {name!r}: {mask_text(last_error)}")
    if not found.records and not found.not_kept:
        console.print(f"no failed records in the last {found.runs} crawl(s) of {name!r}")
        return
    table = new_table(
        "where", "reason", "detail", "last seen", "times", title=f"failed records of {name}"
    )
    for record in found.records:
        table.add_row(
            record.where,
            record.reason,
            record.detail[:100],
            ago(record.last_seen),
            str(record.times),
        )
    console.print(table)
    console.print(f"{len(found.records)} record(s) from the last {found.runs} crawl(s)")
    if found.not_kept:
        console.print(
            f"{found.not_kept} more failed record(s) were counted but not kept one by one "
            f"(a crawl keeps its first {FAILURES_KEPT}; older versions kept none)"
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
    from indexer.source_admin import find_source

    cli = ready_state(ctx)
    ids = None
    if source:
        with session_scope(session_factory(cli.engine)) as session:
            ids = [find_source(session, ref).id for ref in source]
    outcomes = _crawl_with_progress(cli, ids, due_only=due, until_done=until_done)
    if not outcomes:
        console.print("no source to crawl: add one with `simmim source add URL --kind rss`")
        return
    _print_outcomes(outcomes, until_done=until_done)
    if all(not o.ok for o in outcomes):
        raise typer.Exit(1)


def _crawl_with_progress(
    cli: CliState, ids: list[int] | None, *, due_only: bool, until_done: bool
) -> list[SourceOutcome]:
    from indexer.crawl import crawl, crawl_until_done
    from simmim.locks import run_lock

    with run_lock(cli.engine, "crawl"), Progress(console=console, transient=True) as progress:
        task = progress.add_task("crawling", total=None)
        if not until_done:
            return crawl(
                cli.settings,
                cli.engine,
                source_ids=ids,
                due_only=due_only,
                on_done=lambda o: progress.advance(task),
            )
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

        return crawl_until_done(
            cli.settings, cli.engine, source_ids=ids, due_only=due_only, on_round=after_round
        )


def _print_outcomes(outcomes: list[SourceOutcome], *, until_done: bool) -> None:
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
    if any(o.failed for o in outcomes):
        console.print("which records failed, and why: `simmim source failures NAME`")
    left = sum(o.remaining or 0 for o in outcomes if o.ok)
    if left and not until_done:
        console.print(f"{left} record(s) left for the next crawls (or `simmim crawl --until-done`)")
