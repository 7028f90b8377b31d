"""`simmim monitor run|once|rescore`, `simmim trends` and `simmim train-sentiment`."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.context import console, err_console, new_table, ready_state, state
from simmim.clock import utcnow

app = typer.Typer()  # merged into the root app by app.cli


monitor_app = typer.Typer(
    help="The monitoring loop: crawl, index, score, detect, email.", no_args_is_help=True
)
app.add_typer(monitor_app, name="monitor")


def _runtime(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from monitor.cycle import Runtime

    cli = ready_state(ctx)
    return Runtime(cli.settings, cli.engine)


@monitor_app.command("once")
def once(
    ctx: typer.Context,
    wait: Annotated[
        bool, typer.Option("--wait", help="Queue behind a run already in progress.")
    ] = False,
) -> None:
    """Run one full cycle (crawl due sources, index, score, detect, notify) and exit.

    For cron; exits 1 if a step failed or alert email could not be delivered, 3 if another
    run holds a step (pass --wait to queue behind it)."""
    runtime = _runtime(ctx)
    runtime.wait_for_locks = wait
    runs = runtime.run_once()
    table = new_table("step", "ok", "seconds", "summary", title="monitor cycle")
    for run in runs:
        took = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0.0
        detail = run.error or json.dumps(run.summary, default=str)
        table.add_row(run.job, "yes" if run.ok else "NO", f"{took:.1f}", detail)
    console.print(table)
    left = sum(r.summary.get("records_left", 0) for r in runs if r.job == "crawl" and r.ok)
    if left:
        every = runtime.settings.monitor.crawl_every_s
        console.print(
            f"{left} record(s) left to read: they come in with the next crawls (each source "
            f"on its own schedule, checked every {every} s by `simmim monitor run`), or now "
            "with `simmim crawl --until-done`"
        )
    if runtime.blocked is not None:
        raise runtime.blocked
    if not all(run.ok for run in runs):
        raise typer.Exit(1)
    undelivered = [r.summary for r in runs if r.job == "notify" and r.summary.get("email_failed")]
    if undelivered:
        summary = undelivered[-1]
        err_console.print(
            f"alert email not delivered: {summary['notifications_pending']} notification(s) "
            f"pending ({summary['email_error']}); they are retried on the next cycle"
        )
        raise typer.Exit(1)


@monitor_app.command("run")
def run(ctx: typer.Context) -> None:
    """Run the scheduler in the foreground until Ctrl-C / SIGTERM."""
    from monitor.scheduler import run_forever
    from monitor.steps import scheduled

    runtime = _runtime(ctx)
    every = ", ".join(f"{step} every {s}s" for step, s in scheduled(runtime.settings).items())
    err_console.print(f"monitor running ({every}); Ctrl-C stops after the running step")
    run_forever(runtime)
    err_console.print("monitor stopped")


@monitor_app.command("status")
def status(ctx: typer.Context) -> None:
    """The last run of each step (scheduler or workers) and, with workers, the task queue:
    tasks by queue and state, live workers, failed tasks with their error."""
    from monitor.worker import monitor_status

    cli = ready_state(ctx)
    found = monitor_status(cli.engine, stalled_after_s=cli.settings.worker.stalled_after_s)
    steps = new_table("step", "last start", "seconds", "ok", "by", "summary", title="last runs")
    for run in found.steps:
        took = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
        steps.add_row(
            run.job,
            f"{run.started_at:%Y-%m-%d %H:%M:%S}",
            "running" if took is None else f"{took:.1f}",
            {True: "yes", False: "NO", None: "-"}[run.ok],
            run.runner or "-",
            run.outcome(),
        )
    console.print(steps if found.steps else "no step has run yet")
    if not found.queue:
        console.print("mode: single process (`simmim monitor run`); no task queue")
        return
    console.print(f"mode: workers on PostgreSQL; {found.workers_line(utcnow())}")
    tasks = new_table(
        "queue", "queued", "running", "of dead workers", "failed", "done", title="tasks"
    )
    for queue, counts in sorted(found.tasks.items()):
        tasks.add_row(
            queue,
            str(counts["todo"]),
            str(found.running(queue)),
            str(found.stalled.get(queue, 0)),
            str(counts["failed"]),
            str(counts["succeeded"]),
        )
    console.print(tasks if found.tasks else "no task queued yet")
    if found.failed:
        failed = new_table("task", "id", "tries", "arguments", "last error", title="failed tasks")
        for task in found.failed:
            failed.add_row(
                task.task,
                str(task.id),
                str(task.attempts),
                json.dumps(task.args),
                task.error or "-",
            )
        console.print(failed)


@monitor_app.command("rescore")
def rescore(ctx: typer.Context) -> None:
    """Drop scores from other scorer versions (after changing topics, model or scorer);
    the next cycle scores those items again."""
    from monitor.scoring import clear_outdated
    from simmim.locks import run_lock

    runtime = _runtime(ctx)
    with run_lock(runtime.engine, "score"):
        cleared = clear_outdated(runtime.engine, runtime.scorers)
    console.print(f"{cleared} item score(s) cleared; run `simmim monitor once` to re-score")


@app.command("trends")
def trends_command(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="topic | ticker | source | query | all")] = "topic",
    key: Annotated[list[str] | None, typer.Option("--key", help="Series key(s).")] = None,
    days: Annotated[int, typer.Option("--days", min=1)] = 14,
    bucket: Annotated[str, typer.Option("--bucket", help="hour | day")] = "day",
    top: Annotated[
        int | None,
        typer.Option("--top", min=1, help="One row per series, the first N (with --sort)."),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option("--sort", help="change (last bucket ÷ usual) | volume | negative."),
    ] = None,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV (the API's and dashboard's columns).")
    ] = False,
) -> None:
    """Volume, mean sentiment and negative share per bucket; with --top/--sort one row per
    series over the range: totals, and the last bucket against the usual one."""
    from monitor.export import (
        SUMMARY_COLUMNS,
        TREND_COLUMNS,
        summary_rows,
        to_csv,
        trend_rows,
    )
    from monitor.trends import SUMMARY_SORTS, trend_summary, trends

    cli = ready_state(ctx)
    hours = {"hour": 1, "day": 24}.get(bucket)
    if hours is None:
        raise typer.BadParameter("use hour or day", param_hint="--bucket")
    since = utcnow() - timedelta(days=days)
    frame = trends(cli.engine, kind, bucket_hours=hours, since=since, keys=key or None)
    if top is not None or sort is not None:
        if (sort or "change") not in SUMMARY_SORTS:
            raise typer.BadParameter(f"use {', '.join(SUMMARY_SORTS)}", param_hint="--sort")
        summary = trend_summary(frame, sort=sort or "change", top=top)
        if as_csv:
            sys.stdout.write(to_csv(summary_rows(summary), SUMMARY_COLUMNS))
        else:
            _print_summary(summary, kind, days, bucket)
        return
    if as_csv:
        sys.stdout.write(to_csv(trend_rows(frame), TREND_COLUMNS))
        return
    frame = frame[frame["volume"] > 0]
    table = new_table("series", "bucket", "items", "mean sentiment", "negative share")
    for row in frame.itertuples():
        table.add_row(
            str(row.key),
            row.start.strftime("%Y-%m-%d %H:%M"),
            str(row.volume),
            f"{row.mean_sentiment:+.2f}",
            f"{row.negative_share:.0%}",
        )
    console.print(table if len(frame) else f"no {kind} items in the last {days} day(s)")


def _print_summary(summary: Any, kind: str, days: int, bucket: str) -> None:
    if not len(summary):
        console.print(f"no {kind} items in the last {days} day(s)")
        return
    table = new_table(
        "series",
        "items",
        "mean sentiment",
        "negative share",
        f"last {bucket}",
        f"usual per {bucket}",
        "change",
        title=f"{kind} series over {days} day(s)",
    )
    for row in summary.itertuples():
        change = "new" if row.change == float("inf") else f"{row.change:.1f}×"
        table.add_row(
            str(row.key),
            str(row.items),
            f"{row.mean_sentiment:+.2f}",
            f"{row.negative_share:.0%}",
            str(row.last),
            f"{row.usual:.1f}",
            change,
        )
    console.print(table)
    console.print(f"{int(summary['items'].sum())} items in {len(summary)} series shown")


@app.command("train-sentiment")
def train_sentiment(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option("--data", help="CSV with a text and a label column.")],
    text_col: Annotated[str, typer.Option("--text-col")] = "text",
    label_col: Annotated[str, typer.Option("--label-col")] = "label",
    label_map: Annotated[
        str, typer.Option("--label-map", help="e.g. 0=negative,1=positive,2=neutral")
    ] = "",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Model folder (default <data dir>/models/sentiment)."),
    ] = None,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="finance: the default scorer's kind of model (MiniLM pieces + rules); "
            "learned: TF-IDF + rules, lighter and without the MiniLM table.",
        ),
    ] = "finance",
    from_default: Annotated[
        bool,
        typer.Option(
            "--from-default/--from-scratch",
            help="finance: stack on the shipped default model (good with few texts).",
        ),
    ] = True,
    domain_col: Annotated[
        str,
        typer.Option(
            "--domain-col",
            help="Column naming each text's kind (news, posts…), if the file has one: the "
            "model's choices are made on the worst kind, and each is compared with the "
            "shipped model.",
        ),
    ] = "domain",
) -> None:
    """Fit a sentiment model on your labelled texts (15% held out to judge and report)."""
    from monitor.sentiment import make_scorer
    from monitor.sentiment.learned import TrainResult, read_domains, read_labelled_csv, train
    from monitor.sentiment.splits import compare_per_domain
    from monitor.train.finance_training import FinanceTrainResult, fit_finance_model
    from simmim.paths import DataLayout

    if kind not in ("finance", "learned"):
        raise typer.BadParameter("use finance or learned", param_hint="--kind")
    cli = state(ctx)
    mapping = dict(pair.split("=", 1) for pair in label_map.split(",") if "=" in pair)
    texts, labels = read_labelled_csv(
        data, text_col=text_col, label_col=label_col, label_map=mapping
    )
    domains = read_domains(data, domain_col)
    folder = out or DataLayout(cli.settings.data_dir).models / "sentiment"
    result: FinanceTrainResult | TrainResult
    if kind == "finance":
        result = fit_finance_model(
            texts,
            labels,
            folder,
            domains=domains,
            base=from_default,
            cache_dir=cli.settings.cache_dir,
        )
    else:
        result = train(texts, labels, folder)
    console.print(f"trained on {result.n_train} texts; model in {result.folder}")
    if result.holdout:
        ece = f", ECE {result.holdout['ece']}" if "ece" in result.holdout else ""
        console.print(
            f"held-out {result.n_holdout}: accuracy {result.holdout['accuracy']}, "
            f"macro-F1 {result.holdout['macro_f1']}{ece}"
        )
    if result.held_out and len(result.held_out) < len(texts):
        cache = cli.settings.cache_dir
        rows = compare_per_domain(
            make_scorer(kind, model=result.folder, cache_dir=cache),
            make_scorer("finance", cache_dir=cache),
            [texts[i] for i in result.held_out],
            [labels[i] for i in result.held_out],
            [domains[i] for i in result.held_out] if domains else ["all"] * len(result.held_out),
        )
        table = new_table("held out", "texts", "new macro-F1", "shipped macro-F1", "new model")
        for row in rows:
            table.add_row(
                str(row["domain"]),
                str(row["n"]),
                f"{row['new']:.3f}",
                f"{row['shipped']:.3f}",
                "better" if row["better"] else "not better: keep the shipped one",
            )
        console.print(table)
    console.print(
        f"use it: SIMMIM_MONITOR__SENTIMENT={kind} SIMMIM_MONITOR__SENTIMENT_MODEL={result.folder}"
        " then `simmim monitor rescore`"
    )
