"""`simmim train-fusion` and `simmim train-backbone`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from simmim.cli.app import app, console, state
from simmim.paths import DataLayout

if TYPE_CHECKING:
    from encoder.pairs import Pair

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="CSV (with a header) or JSONL of image-text pairs; image paths may be relative "
        "to the file. Without it: every stored item that has both an image and text.",
    ),
]
ImageCol = Annotated[str, typer.Option(help="Column/field holding the image path.")]
TextCol = Annotated[str, typer.Option(help="Column/field holding the text.")]
OutOption = Annotated[Path | None, typer.Option("--out", help="Checkpoint path (.safetensors).")]


def _pairs(ctx: typer.Context, data: Path | None, image_col: str, text_col: str) -> list[Pair]:
    from encoder.pairs import pairs_from_items, read_pairs_file
    from simmim import migrations

    if data is not None:
        return read_pairs_file(data, image_col=image_col, text_col=text_col)
    cli = state(ctx)
    migrations.require_head(cli.engine)
    return pairs_from_items(cli.engine, DataLayout(cli.settings.data_dir))


def _default_out(ctx: typer.Context, stem: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return DataLayout(state(ctx).settings.data_dir).models / f"{stem}-{stamp}.safetensors"


def _print_report(report: object, title: str) -> None:
    from encoder.training import RecallReport, summarize

    assert isinstance(report, RecallReport)
    table = Table(title=title)
    table.add_column("held-out recall")
    table.add_column(report.baseline_name, justify="right")
    table.add_column("trained", justify="right")
    for row in summarize(report):
        table.add_row(*row)
    console.print(table)
    console.print(
        f"{report.n_train} training / {report.n_val} held-out pairs, "
        f"{report.epochs_run} epochs (best: {int(report.extra.get('best_epoch', 0))})"
    )


@app.command("train-fusion")
def train_fusion_command(
    ctx: typer.Context,
    data: DataOption = None,
    image_col: ImageCol = "image",
    text_col: TextCol = "text",
    out: OutOption = None,
    epochs: Annotated[int, typer.Option(min=1)] = 40,
    batch_size: Annotated[int, typer.Option(min=2)] = 64,
    lr: Annotated[float, typer.Option(min=0)] = 2e-3,
    val_fraction: Annotated[float, typer.Option(min=0.01, max=0.9)] = 0.2,
    seed: int = 0,
    report_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Train the Semantic Memory fusion on image-text pairs (backbone frozen).

    Reports held-out Recall@1/5/10 (text->item, image->item) against the CLIP-mean
    baseline and saves a safetensors checkpoint; point SIMMIM_ENCODER__FUSION_CHECKPOINT
    at it to use it.
    """
    from encoder import load_encoder
    from encoder.training import FusionTrainConfig, train_fusion

    pairs = _pairs(ctx, data, image_col, text_col)
    settings = state(ctx).settings.model_copy(deep=True)
    settings.encoder.fusion_checkpoint = None  # train from the baseline, not on top of an old one
    encoder = load_encoder(settings)
    path = out or _default_out(ctx, "fusion")
    config = FusionTrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, val_fraction=val_fraction, seed=seed
    )
    report = train_fusion(encoder, pairs, path, config)
    if report_json:
        console.print_json(json.dumps({**report.to_dict(), "checkpoint": str(path)}))
        return
    _print_report(report, f"fusion on {encoder.backbone.fingerprint}")
    console.print(f"saved {path}\nuse it: export SIMMIM_ENCODER__FUSION_CHECKPOINT={path}")


@app.command("train-backbone")
def train_backbone_command(
    ctx: typer.Context,
    data: DataOption = None,
    image_col: ImageCol = "image",
    text_col: TextCol = "text",
    out: OutOption = None,
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    batch_size: Annotated[int, typer.Option(min=2)] = 32,
    lr: Annotated[
        float, typer.Option(min=0, help="1e-5 suits pretrained weights; ~1e-3 a random init.")
    ] = 1e-5,
    val_fraction: Annotated[float, typer.Option(min=0.01, max=0.9)] = 0.2,
    seed: int = 0,
    report_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Fine-tune the open_clip image and text towers contrastively on image-text pairs.

    Starts from the configured model and weights, reports held-out Recall@1/5/10
    (text->image, image->text) before and after, and saves an open_clip checkpoint; point
    SIMMIM_ENCODER__PRETRAINED at it to use it (then retrain the fusion and re-index).
    """
    from encoder import load_encoder
    from encoder.finetune import BackboneTrainConfig, train_backbone

    pairs = _pairs(ctx, data, image_col, text_col)
    settings = state(ctx).settings.model_copy(deep=True)
    settings.encoder.fusion_checkpoint = None
    encoder = load_encoder(settings, trainable=True)
    path = out or _default_out(ctx, f"backbone-{settings.encoder.model}")
    config = BackboneTrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, val_fraction=val_fraction, seed=seed
    )
    report = train_backbone(encoder, pairs, path, config)
    if report_json:
        console.print_json(json.dumps({**report.to_dict(), "checkpoint": str(path)}))
        return
    _print_report(report, f"fine-tuned {settings.encoder.model}")
    console.print(f"saved {path}\nuse it: export SIMMIM_ENCODER__PRETRAINED={path}")
