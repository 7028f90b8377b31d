"""`simmim alerts list|ack`, `simmim rules list|add|disable`, `simmim queries save|list|remove`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from app.cli.context import console, new_table, ready_state, serving_encoder

app = typer.Typer()  # merged into the root app by app.cli


alerts_app = typer.Typer(help="Alerts: list, acknowledge.", no_args_is_help=True)
rules_app = typer.Typer(help="Detection rules: list, add, disable, enable.", no_args_is_help=True)
queries_app = typer.Typer(help="Saved semantic queries watched as monitors.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
app.add_typer(rules_app, name="rules")
app.add_typer(queries_app, name="queries")


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV (the API's and dashboard's columns).")
    ] = False,
) -> None:
    """Firing alerts and those resolved in the last day (with --all every one), newest first."""
    from datetime import timedelta

    from monitor.alerts import alert_state, list_alerts
    from monitor.export import ALERT_COLUMNS, alert_rows, to_csv
    from monitor.models import AlertStatus
    from simmim.clock import utcnow

    cli = ready_state(ctx)
    rows = list_alerts(
        cli.engine,
        status=None if all_ else AlertStatus.FIRING,
        limit=limit,
        resolved_since=None if all_ else utcnow() - timedelta(days=1),
    )
    if as_csv:
        sys.stdout.write(to_csv(alert_rows(rows), ALERT_COLUMNS))
        return
    table = new_table("id", "status", "fired", "ack", "series", "summary")
    for a in rows:
        table.add_row(
            str(a.id),
            alert_state(a),
            f"{a.fired_at:%Y-%m-%d %H:%M}",
            "yes" if a.acknowledged_at else "-",
            f"{a.series_kind.value}:{a.series_key}",
            a.summary,
        )
    console.print(
        table
        if rows
        else "no alerts"
        + ("" if all_ else " firing or resolved in the last day (--all: every one)")
    )


@alerts_app.command("ack")
def alerts_ack(ctx: typer.Context, alert_id: Annotated[int, typer.Argument()]) -> None:
    """Acknowledge an alert: no repeat emails for it."""
    from monitor.alerts import acknowledge

    alert = acknowledge(ready_state(ctx).engine, alert_id)
    console.print(f"alert {alert.id} acknowledged ({alert.status.value})")


@rules_app.command("list")
def rules_list(ctx: typer.Context) -> None:
    """Rules, with the default set created on first use."""
    from monitor.rules import list_rules

    table = new_table("id", "name", "kind", "series", "detector", "on")
    for r in list_rules(ready_state(ctx).engine):
        bucket = "1d" if r.bucket_hours == 24 else f"{r.bucket_hours}h"
        table.add_row(
            str(r.id),
            r.name,
            r.kind.value,
            f"{r.series_kind.value}:{r.series_key or '*'}",
            f"{bucket} x{r.window} min{r.min_volume} z{r.z:g} p{r.p_value:g} c{r.confirm}",
            "yes" if r.enabled else "no",
        )
    console.print(table)


@rules_app.command("add")
def rules_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    kind: Annotated[
        str,
        typer.Option(
            "--kind", help="volume_spike | negative_share | sentiment_drop | source_silent"
        ),
    ],
    series: Annotated[
        str,
        typer.Option(
            "--series",
            help="topic | ticker | source | query | all, optionally :KEY (e.g. ticker:ACME)",
        ),
    ],
    bucket: Annotated[str, typer.Option("--bucket", help="hour | day | Nh")] = "day",
    window: Annotated[int, typer.Option("--window", min=2, help="Baseline buckets.")] = 14,
    min_history: Annotated[int, typer.Option("--min-history", min=1)] = 5,
    min_volume: Annotated[int, typer.Option("--min-volume", min=0)] = 5,
    z: Annotated[float, typer.Option("--z", min=0)] = 3.0,
    p_value: Annotated[float, typer.Option("--p", min=0, max=1)] = 0.001,
    confirm: Annotated[
        int, typer.Option("--confirm", min=1, help="Consecutive buckets to fire.")
    ] = 1,
    cooldown: Annotated[str, typer.Option("--cooldown", help="e.g. 6h, 1d")] = "1d",
    repeat: Annotated[
        str | None, typer.Option("--repeat", help="Re-notify while firing, e.g. 12h")
    ] = None,
) -> None:
    """Add a detection rule."""
    from indexer.source_admin import parse_every
    from monitor.rules import add_rule

    rule = add_rule(
        ready_state(ctx).engine,
        name=name,
        kind=kind,
        series=series,
        bucket=bucket,
        window=window,
        min_history=min_history,
        min_volume=min_volume,
        z=z,
        p_value=p_value,
        confirm=confirm,
        cooldown_s=parse_every(cooldown),
        repeat_s=parse_every(repeat) if repeat else None,
    )
    console.print(f"added rule {rule.id} {name!r}")


def _set_enabled(ctx: typer.Context, rule: str, enabled: bool) -> None:
    from monitor.rules import update_rule

    found = update_rule(ready_state(ctx).engine, rule, enabled=enabled)
    console.print(f"rule {found.id} {found.name!r} {'enabled' if enabled else 'disabled'}")


@rules_app.command("disable")
def rules_disable(
    ctx: typer.Context, rule: Annotated[str, typer.Argument(help="Id or name.")]
) -> None:
    """Stop evaluating a rule (its alerts stay)."""
    _set_enabled(ctx, rule, False)


@rules_app.command("enable")
def rules_enable(
    ctx: typer.Context, rule: Annotated[str, typer.Argument(help="Id or name.")]
) -> None:
    _set_enabled(ctx, rule, True)


@queries_app.command("save")
def queries_save(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    text: Annotated[str | None, typer.Option("--text")] = None,
    image: Annotated[Path | None, typer.Option("--image")] = None,
    space: Annotated[str, typer.Option("--space", help="image | text | fused")] = "fused",
    threshold: Annotated[
        float, typer.Option("--threshold", help="Cosine a new item must reach.")
    ] = 0.3,
) -> None:
    """Save a text and/or image query; new items that match it form a watched series."""
    from monitor.queries import save_query

    cli = ready_state(ctx)
    query = save_query(
        cli.settings,
        cli.engine,
        serving_encoder(cli.settings),
        name=name,
        text=text,
        image=image,
        space=space,
        threshold=threshold,
    )
    console.print(f"saved query {query.id} {name!r} (with a volume-spike rule on its matches)")


@queries_app.command("list")
def queries_list(ctx: typer.Context) -> None:
    from monitor.queries import list_queries

    cli = ready_state(ctx)
    table = new_table("id", "name", "text", "image", "space", "threshold", "enabled")
    for q in list_queries(cli.engine):
        table.add_row(
            str(q.id),
            q.name,
            q.text or "-",
            (q.image_sha256 or "-")[:12],
            q.space,
            f"{q.threshold:g}",
            "yes" if q.enabled else "no",
        )
    console.print(table)


@queries_app.command("remove")
def queries_remove(
    ctx: typer.Context, query: Annotated[str, typer.Argument(help="Id or name.")]
) -> None:
    from monitor.queries import remove_query

    name = remove_query(ready_state(ctx).engine, query)
    console.print(f"removed saved query {name!r} and its rules")
