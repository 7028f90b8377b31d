"""`simmim demo`: the whole pipeline offline on a built-in corpus, with a summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from app.cli.context import console, err_console, folded_label, new_table

app = typer.Typer()  # merged into the root app by app.cli


@app.command("demo")
def demo_command(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the demo writes (wiped on the next demo run).")
    ] = Path("demo-data"),
    dashboard: Annotated[
        bool, typer.Option("--dashboard", help="Open the dashboard afterwards.")
    ] = False,
    model: Annotated[
        str,
        typer.Option(
            "--model", help="auto (pretrained if cached/reachable, else tiny) | tiny | pretrained"
        ),
    ] = "auto",
) -> None:
    """Generate a sample corpus, serve it locally, crawl → index → score → detect → email."""
    from app.demo.run import run_demo

    if model not in ("auto", "tiny", "pretrained"):
        raise typer.BadParameter("auto, tiny or pretrained", param_hint="--model")
    started = time.monotonic()
    result = run_demo(data_dir, model=model, say=lambda m: err_console.print(f"demo: {m}"))
    took = time.monotonic() - started

    console.rule("SimMIM demo")
    console.print(f"model: {result.model}")
    steps = new_table("step", "ok", "outcome", title="pipeline (the code of `simmim monitor once`)")
    for name, ok, detail in result.steps:
        steps.add_row(name, "yes" if ok else "NO", detail[:300])
    console.print(steps)
    items = new_table("source", "items", title="items by source")
    for name, count in sorted(result.items_by_source.items()):
        items.add_row(name, str(count))
    console.print(items)
    indexes = new_table("space", "type", "vectors", "size", "recall@10", title="indexes")
    for space, m in result.indexes.items():
        recall = "-" if m.get("recall_at_10") is None else f"{m['recall_at_10']:.3f}"
        indexes.add_row(
            space,
            m["factory"],
            str(m["count"]),
            "in Milvus" if m.get("backend") == "milvus" else f"{(m['bytes'] or 0) / 1e3:.0f} kB",
            recall,
        )
    console.print(indexes)
    console.print("top topics: " + ", ".join(f"{name} ({n})" for name, n in result.topics))
    console.print(f"alerts fired: {len(result.alerts)}")
    for summary in result.alerts:
        console.print(f"  - {summary}")
    console.print(f"emails: {len(result.emails)} in {result.data_dir / 'outbox'}")
    for subject in result.subjects:
        console.print(f"  - {subject}")
    for search in result.searches:
        table = new_table(
            "#", "score", "item", "also in", title=f"search: {search.label} [{search.space}]"
        )
        for rank, r in enumerate(search.results, start=1):
            table.add_row(
                str(rank),
                f"{r.score:.3f}",
                (r.title or r.text or "")[:90],
                folded_label(r.also_in, r.duplicates),
            )
        console.print(table)
    if result.retrieval is not None:
        from app.cli.eval_cmd import retrieval_table

        console.print(retrieval_table(result.retrieval))
        console.print("measure your own corpus: simmim eval retrieval")
    console.print(f"finished in {took:.0f} s")
    command = f"simmim --config {result.config_file} dashboard"
    if dashboard:
        from app.cli import main

        main(["--config", str(result.config_file), "dashboard"])
    else:
        console.print(f"open the dashboard: {command}")
