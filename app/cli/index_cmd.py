"""`simmim index`, `simmim index status` and `simmim search`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.context import (
    console,
    err_console,
    folded_label,
    new_table,
    ready_state,
    serving_encoder,
    state,
)

if TYPE_CHECKING:
    from monitor.items import HitScores

app = typer.Typer()  # merged into the root app by app.cli


index_app = typer.Typer(
    help="Encode pending items into the indexes (`simmim index`), or show them (`status`).",
    invoke_without_command=True,
)
app.add_typer(index_app, name="index")


@index_app.callback()
def index(
    ctx: typer.Context,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild", help="Drop the indexes and re-encode every item (after a model change)."
        ),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Queue behind an index run already in progress.")
    ] = False,
    ray: Annotated[
        bool,
        typer.Option("--ray", help="Encode on Ray actors (the `distributed` extra)."),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            envvar="RAY_ADDRESS",
            help="Join this Ray cluster (ray://head:10001); default: a local Ray.",
        ),
    ] = None,
    ray_actors: Annotated[
        int | None,
        typer.Option("--ray-actors", min=1, help="Encoder actors (default: one per GPU)."),
    ] = None,
) -> None:
    """Encode pending items and add them to the image, text and fused indexes."""
    if ctx.invoked_subcommand is not None:
        return
    from indexer.pipeline.ray_stage import RayOptions, ray_stage
    from indexer.pipeline.runner import run_ingest
    from simmim.locks import run_lock

    cli = ready_state(ctx)
    on_ray = RayOptions(address=ray_address, actors=ray_actors) if ray or ray_address else None
    stage = ray_stage(cli.settings, cli.engine, on_ray) if on_ray is not None else None
    with run_lock(cli.engine, "index", wait=wait):  # the same lock as the monitor's index step
        encoder = serving_encoder(cli.settings)
        summary = run_ingest(
            cli.settings, cli.engine, encoder, rebuild=rebuild, progress=True, stage=stage
        )
    added = ", ".join(f"{space} {count}" for space, count in summary.added.items())
    console.print(
        f"indexed {summary.indexed} item(s), failed {summary.failed}; vectors added: {added}"
    )
    if summary.unreadable_images:
        console.print(
            f"{summary.unreadable_images} image(s) unreadable: those items are indexed by their "
            "text only (see the item's error)"
        )
    if summary.requeued or summary.removed:
        console.print(
            f"reconciled: {summary.requeued} re-queued, {summary.removed} stale vector(s) removed"
        )
    if summary.rebuilt:
        console.print(f"rebuilt for growth: {', '.join(summary.rebuilt)}")


@index_app.command()
def status(ctx: typer.Context) -> None:
    """Per space: index type, vectors, measured recall, model fingerprint."""
    from indexer.index import SPACES, stores_status

    settings = state(ctx).settings
    manifests = stores_status(settings, verify=True)
    table = new_table(
        "space",
        "type",
        "vectors",
        "nprobe",
        "recall@10",
        "fingerprint",
        "built",
        title=f"backend: {settings.index.backend}",
    )
    for space in SPACES:
        m = manifests.get(space)
        if m is None:
            table.add_row(space, "-", "0", "-", "-", "-", "not built yet")
            continue
        recall = "-" if m.get("recall_at_10") is None else f"{m['recall_at_10']:.3f}"
        if m.get("backend") == "milvus":
            size = m["location"]
        else:
            size = "file missing" if m["bytes"] is None else f"{m['bytes'] / 1e6:.1f} MB"
        table.add_row(
            space,
            m["factory"],
            str(m["count"]),
            str(m["nprobe"] or "-"),
            recall,
            m["fingerprint"],
            f"{m['built_at']} ({size})",
        )
    console.print(table)
    damaged = {name: m["health"] for name, m in manifests.items() if m["health"] != "ok"}
    for name, health in damaged.items():
        console.print(f"{name}: {health}")
    if damaged:
        raise typer.Exit(1)
    if manifests and settings.index.backend == "faiss":
        from indexer.index.store import verified_parts

        for name, m in manifests.items():
            console.print(f"{name}: verified {verified_parts(m)}: ok")


@index_app.command()
def migrate(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="Target backend: milvus or faiss.")],
    uri: Annotated[
        str | None,
        typer.Option("--uri", help="Milvus URI for the target (default: index.milvus_uri)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Queue behind an index run already in progress.")
    ] = False,
) -> None:
    """Copy the vectors into the other backend (re-encodes only when they cannot be copied)."""
    from indexer.migrate import migrate_index, with_backend
    from simmim.locks import run_lock
    from simmim.redact import mask_url

    if to not in ("milvus", "faiss"):
        raise typer.BadParameter(f"--to {to!r}: choose milvus or faiss", param_hint="--to")
    cli = ready_state(ctx)
    target = with_backend(cli.settings, to, uri)
    with run_lock(cli.engine, "index", wait=wait):
        encoder = serving_encoder(cli.settings)
        try:
            summary = migrate_index(cli.settings, cli.engine, encoder, target)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--to") from exc
    how = f"re-encoded ({summary.reason})" if summary.reencoded else "copied"
    counts = ", ".join(f"{space} {n}" for space, n in summary.copied.items()) or "nothing"
    console.print(f"{summary.source} → {summary.target}: {how}: {counts}")
    setting = f"SIMMIM_INDEX__BACKEND={to}"
    if to == "milvus":
        setting += f" SIMMIM_INDEX__MILVUS_URI={mask_url(target.index.milvus_uri) or '(default: data_dir/milvus.db)'}"
    console.print(f"now switch with: {setting} (the {summary.source} index is left as it was)")


@app.command("search")
def search_command(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="Text query.")] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="Image query (with or without text).")
    ] = None,
    space: Annotated[
        str, typer.Option("--space", help="image | text | fused (default).")
    ] = "fused",
    k: Annotated[int, typer.Option("-k", min=1, max=1000)] = 10,
    since: Annotated[
        datetime | None, typer.Option("--since", help="Published on or after (YYYY-MM-DD).")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option("--until", help="Published before (YYYY-MM-DD).")
    ] = None,
    source: Annotated[
        list[int] | None, typer.Option("--source", help="Source id (repeatable).")
    ] = None,
    topic: Annotated[
        list[str] | None, typer.Option("--topic", help="Only items with this topic (repeatable).")
    ] = None,
    ticker: Annotated[
        list[str] | None,
        typer.Option("--ticker", help="Only items naming this company id (repeatable)."),
    ] = None,
    sentiment: Annotated[
        list[str] | None,
        typer.Option("--sentiment", help="negative | neutral | positive (repeatable)."),
    ] = None,
    collapse: Annotated[
        bool,
        typer.Option(
            "--collapse/--no-collapse",
            help="Show identical and near-identical items once, with 'also in' (default).",
        ),
    ] = True,
    like: Annotated[
        int | None,
        typer.Option("--like", help="More like this item id (its own vector; no query)."),
    ] = None,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV (the API's and dashboard's columns).")
    ] = False,
) -> None:
    """Find items by text, by image, or both; prints a ranked table.

    Images like an image: --image photo.jpg --space image. More like an item: --like ID."""
    from datetime import UTC

    from encoder.fitted import fitted_elsewhere
    from indexer.index import open_stores
    from indexer.search import search
    from monitor.filters import search_filters
    from monitor.items import hit_scores

    if like is not None and (text or image is not None):
        raise typer.BadParameter("give --like ID, or a text and/or --image, not both")
    labels = {"negative", "neutral", "positive"}
    if sentiment and not set(sentiment) <= labels:
        raise typer.BadParameter(f"--sentiment takes {', '.join(sorted(labels))}")
    cli = ready_state(ctx)
    query_image = None
    if image is not None:  # a wrong path is said at once, not after seconds of model loading
        from simmim.images import ImageDecodeError, open_image

        try:
            query_image = open_image(image.expanduser(), max_pixels=cli.settings.max_image_pixels)
        except (ImageDecodeError, OSError) as exc:  # "cannot read …: No such file or directory"
            said = str(exc) if str(image) in str(exc) else f"{image}: {exc}"
            raise typer.BadParameter(said, param_hint="--image") from None
    foreign = fitted_elsewhere(cli.settings)
    if foreign:
        err_console.print(f"[yellow]warning:[/] {foreign}")
    encoder = serving_encoder(cli.settings)
    indexes = open_stores(cli.settings, encoder.fingerprint, encoder.dim, read_only=True)
    filters = search_filters(  # the same filters as the API's and the dashboard's
        since=since.replace(tzinfo=since.tzinfo or UTC) if since else None,
        until=until.replace(tzinfo=until.tzinfo or UTC) if until else None,
        sources=source or (),
        topics=topic or (),
        tickers=[t.upper() for t in ticker or ()],
        sentiments=sentiment or (),
    )
    results = search(
        cli.engine,
        encoder,
        indexes,
        text=text,
        image=query_image,
        space=space,
        k=k,
        filters=filters,
        collapse=collapse,
        like=like,
    )
    folded = any(r.duplicates for r in results)
    scores = hit_scores(cli.engine, [r.item_id for r in results])
    if as_csv:
        from monitor.export import SEARCH_COLUMNS, search_rows, to_csv

        sys.stdout.write(to_csv(search_rows(results, scores), SEARCH_COLUMNS))
        return
    scored = bool(scores)  # nothing scored yet (`simmim monitor once` scores): no empty columns
    table = new_table(
        "#",
        "score",
        "item",
        "title",
        *(["sentiment", "companies", "topics"] if scored else []),
        "published",
        "url / image",
        *(["also in"] if folded else []),
        title=f"{len(results)} result(s) in the {space} space"
        + (f", more like item {like}" if like is not None else ""),
    )
    for rank, r in enumerate(results, start=1):
        title = (r.title or r.text or "")[:70]
        when = r.published_at.strftime("%Y-%m-%d") if r.published_at else "-"
        table.add_row(
            str(rank),
            f"{r.score:.3f}",
            str(r.item_id),
            title,
            *(_finance_cells(scores.get(r.item_id)) if scored else []),
            when,
            r.url or (r.image_sha256 or "")[:16],
            *([folded_label(r.also_in, r.duplicates)] if folded else []),
        )
    console.print(table)


def _finance_cells(scored: HitScores | None) -> list[str]:
    """Sentiment (label and intensity), companies, topics."""
    if scored is None:
        return ["-", "-", "-"]
    return [
        f"{scored.sentiment_label} {scored.sentiment:+.2f}",
        ", ".join(scored.tickers) or "-",
        ", ".join(scored.topics[:3]) or "-",
    ]
