"""`simmim train-fusion` and `simmim train-backbone`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.context import console, new_table, ready_state, serving_encoder, state
from simmim.clock import utcnow
from simmim.paths import DataLayout

app = typer.Typer()  # merged into the root app by app.cli


if TYPE_CHECKING:
    from encoder.train.pairs import Pair
    from encoder.train.training import RecallReport
    from simmim.settings import Settings

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
    from encoder.train.pairs import pairs_from_items, read_pairs_file

    if data is not None:
        return read_pairs_file(data, image_col=image_col, text_col=text_col)
    cli = ready_state(ctx)
    return pairs_from_items(cli.engine, DataLayout(cli.settings.data_dir))


def _default_out(ctx: typer.Context, stem: str) -> Path:
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    return DataLayout(state(ctx).settings.data_dir).models / f"{stem}-{stamp}.safetensors"


def _without_fusion(ctx: typer.Context) -> Settings:
    settings = state(ctx).settings.model_copy(deep=True)
    settings.encoder.fusion_checkpoint = None
    return settings


def _finish(report: RecallReport, path: Path, as_json: bool, title: str, setting: str) -> None:
    if as_json:
        console.print_json(json.dumps({**report.to_dict(), "checkpoint": str(path)}))
        return
    _print_report(report, title)
    console.print(f"saved {path}\nuse it: export SIMMIM_ENCODER__{setting}={path}")


def _print_report(report: RecallReport, title: str) -> None:
    from encoder.train.training import summarize

    table = new_table("held-out recall", report.baseline_name, "trained", title=title)
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
    auto: Annotated[
        bool,
        typer.Option(
            "--auto",
            help="Self-training now (the scheduler and workers also run it every "
            "SIMMIM_FUSION__EVERY_S): train on the corpus's items that are not held out; "
            "only if it beats the fusion in use and the CLIP mean on the held-out items (as "
            "`simmim eval retrieval` measures), re-index beside the live index and swap.",
        ),
    ] = False,
    margin: Annotated[float, typer.Option(min=0, help="--auto: Recall@5 gain needed.")] = 0.02,
) -> None:
    """Train the Semantic Memory fusion on image-text pairs (backbone frozen).

    Reports held-out Recall@1/5/10 (text->item, image->item) against the CLIP-mean
    baseline and saves a safetensors checkpoint; point SIMMIM_ENCODER__FUSION_CHECKPOINT
    at it to use it.
    """
    from encoder import load_encoder
    from encoder.train.training import FusionTrainConfig, train_fusion

    if auto:
        _self_train(
            ctx,
            FusionTrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed),
            margin,
            report_json,
        )
        return
    pairs = _pairs(ctx, data, image_col, text_col)
    encoder = load_encoder(_without_fusion(ctx))  # train from the baseline, not an old fusion
    path = out or _default_out(ctx, "fusion")
    config = FusionTrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, val_fraction=val_fraction, seed=seed
    )
    report = train_fusion(encoder, pairs, path, config)
    _finish(
        report, path, report_json, f"fusion on {encoder.backbone.fingerprint}", "FUSION_CHECKPOINT"
    )


def _self_train(ctx: typer.Context, config: object, margin: float, as_json: bool) -> None:
    from indexer.fusion_switch import self_train_step

    cli = ready_state(ctx)
    cli.settings.fusion.margin = margin
    step = self_train_step(
        cli.settings,
        cli.engine,
        serving_encoder(cli.settings),
        force=True,
        config=config,  # type: ignore[arg-type]
        progress=True,
    )
    attempt = step.attempt
    assert attempt is not None  # forced: it always trains
    if as_json:
        console.print_json(json.dumps(attempt.to_dict()))
        return
    verdict = "kept" if attempt.accepted else "not kept"
    console.print(
        f"self-training on {attempt.train_pairs} items, judged on {attempt.held_out_pairs} "
        f"held-out: {verdict} ({attempt.reason})"
    )
    if attempt.switched:
        console.print(
            f"in use now: the index was rebuilt with it beside the old one and swapped "
            f"({attempt.switched['reindexed']} items); running processes follow it"
        )
    elif attempt.accepted:
        console.print(
            f"SIMMIM_ENCODER__FUSION_CHECKPOINT is set, so it stays in use; to use the new "
            f"one: SIMMIM_ENCODER__FUSION_CHECKPOINT={attempt.checkpoint}, then `simmim index "
            "--rebuild` (or unset it: the fusion then follows the index and trains itself)"
        )


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
    from encoder.train.finetune import BackboneTrainConfig, train_backbone

    pairs = _pairs(ctx, data, image_col, text_col)
    settings = _without_fusion(ctx)
    encoder = load_encoder(settings, trainable=True)
    path = out or _default_out(ctx, f"backbone-{settings.encoder.model}")
    config = BackboneTrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, val_fraction=val_fraction, seed=seed
    )
    # Fitted on this data dir's own items: recorded, so search on other data warns.
    corpus = None if data is not None else DataLayout(settings.data_dir).corpus_id()
    report = train_backbone(encoder, pairs, path, config, fitted_on=corpus)
    _finish(report, path, report_json, f"fine-tuned {settings.encoder.model}", "PRETRAINED")
