"""`simmim images thumbnails`: the small copies encoding and the result grid read."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.context import console, ready_state

app = typer.Typer()  # merged into the root app by app.cli
images_app = typer.Typer(help="The stored images.", no_args_is_help=True)
app.add_typer(images_app, name="images")


@images_app.command("thumbnails")
def thumbnails(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Decode threads.")] = 2,
) -> None:
    """Make the copies (short side SIMMIM_THUMBNAIL_SIZE) that images stored before
    thumbnails existed lack; new images get theirs at ingest."""
    from indexer.image_store import make_thumbnails

    cli = ready_state(ctx)
    size = cli.settings.thumbnail_size
    if size <= 0:
        console.print("thumbnails are off (SIMMIM_THUMBNAIL_SIZE=0): nothing to do")
        return
    done = make_thumbnails(cli.settings, cli.engine, workers=workers)
    console.print(
        f"thumbnails ({size} px): {done.made} made, {done.present} already there, "
        f"{done.small} not needed (as small already), {len(done.unreadable)} unreadable"
    )
    for sha, why in list(done.unreadable.items())[:10]:
        console.print(f"  {sha[:12]}…: {why}")
