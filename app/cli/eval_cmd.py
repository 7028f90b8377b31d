"""`simmim eval retrieval`: how well search works on your own corpus."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.cli.context import console, new_table, ready_state, serving_encoder
from simmim.paths import DataLayout

if TYPE_CHECKING:
    from encoder.train.evaluation import RetrievalReport

app = typer.Typer()  # merged into the root app by app.cli
eval_app = typer.Typer(help="Measure search quality on your own corpus.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

DIRECTIONS = {
    "image": ("text_to_image",),
    "text": ("image_to_text",),
    "fused": ("fused_text_to_item", "fused_image_to_item"),
}


@eval_app.command("retrieval")
def retrieval(
    ctx: typer.Context,
    space: Annotated[
        list[str] | None,
        typer.Option(
            "--space",
            help="image (text→image), text (image→text), fused (a remembered span of an "
            "item's text, or its image → the item); repeatable; default all.",
        ),
    ] = None,
    sample: Annotated[
        int | None, typer.Option("--sample", min=4, help="At most this many held-out items.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Recall@1/5/10 and MRR on held-out items that have both an image and a text, for the
    configured fusion and the plain CLIP mean side by side. The last result is kept for
    `simmim status` and the dashboard's System page."""
    from encoder.train.evaluation import evaluate_corpus, save_report
    from indexer.live_fusion import fusion_of

    unknown = set(space or ()) - set(DIRECTIONS)
    if unknown:
        raise typer.BadParameter(
            f"unknown space {', '.join(sorted(unknown))}; use image, text or fused",
            param_hint="--space",
        )
    cli = ready_state(ctx)
    encoder = serving_encoder(cli.settings)
    layout = DataLayout(cli.settings.data_dir)
    checkpoint = cli.settings.encoder.fusion_checkpoint or fusion_of(
        cli.settings, encoder.fingerprint
    )
    report = evaluate_corpus(
        encoder,
        cli.engine,
        layout,
        sample=sample,
        fusion_name=checkpoint.name if checkpoint else None,
    )
    save_report(layout, report)
    wanted = [d for s in (space or list(DIRECTIONS)) for d in DIRECTIONS[s]]
    if as_json:
        data = report.to_dict()
        data["directions"] = {d: report.directions[d] for d in wanted}
        data["clip_mean"] = {d: v for d, v in report.clip_mean.items() if d in wanted}
        console.print_json(json.dumps(data))
        return
    console.print(retrieval_table(report, wanted))


def retrieval_table(report: RetrievalReport, directions: list[str] | None = None) -> Table:
    """The report as a table; the fused directions also with the plain CLIP mean."""
    table = new_table(
        "direction",
        "model",
        "R@1",
        "R@5",
        "R@10",
        "MRR",
        title=f"retrieval on {report.n} held-out items (fusion: {report.fusion})",
    )
    for direction in directions or list(report.directions):
        fused = direction in report.clip_mean
        rows = [(report.fusion if fused else "towers", report.directions[direction])]
        if fused and report.fusion != "clip-mean":
            rows.append(("clip-mean", report.clip_mean[direction]))
        for name, m in rows:
            table.add_row(
                direction.replace("_", " "),
                name,
                f"{m['r1']:.3f}",
                f"{m['r5']:.3f}",
                f"{m['r10']:.3f}",
                f"{m['mrr']:.3f}",
            )
    return table
