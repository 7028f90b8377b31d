"""`simmim topics list|add|train`: the taxonomy's classifier and the event topics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.context import console, new_table, state

app = typer.Typer()  # merged into the root app by app.cli
topics_app = typer.Typer(
    help="Topics: the trained taxonomy and event topics.", no_args_is_help=True
)
app.add_typer(topics_app, name="topics")


@topics_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every topic items can get: the classifier's taxonomy, then the event topics."""
    from monitor.topic_admin import list_topics

    table = new_table("topic", "kind", "source", "keywords", "examples")
    for t in list_topics(state(ctx).settings):
        table.add_row(t.name, t.kind, t.source, ", ".join(t.keywords[:6]), str(t.examples))
    console.print(table)


@topics_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The topic's name (its series key).")],
    prompt: Annotated[
        list[str], typer.Option("--prompt", help="A phrase saying what it is about (repeat).")
    ],
    keyword: Annotated[
        list[str] | None, typer.Option("--keyword", help="A word or phrase of it (repeat).")
    ] = None,
    example: Annotated[
        list[str] | None, typer.Option("--example", help="A text about it (repeat).")
    ] = None,
) -> None:
    """Add an event topic (or replace one of that name) and say how well it holds."""
    from monitor.topic_admin import add_event_topic
    from simmim.topic_defaults import TopicSpec

    spec = TopicSpec(name=name, prompts=prompt, keywords=keyword or [], examples=example or [])
    added = add_event_topic(state(ctx).settings, spec)
    console.print(f"added event topic {name!r}")
    if added.examples >= 2:
        console.print(
            f"held out one at a time, {added.recognised} of its {added.examples} examples get "
            "the topic"
        )
    else:
        console.print("give two or more --example texts to measure it")
    console.print("run `simmim monitor rescore` to tag items scored before")


@topics_app.command("train")
def train(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="CSV with a text and a label (topic) column.")],
    text_col: Annotated[str, typer.Option("--text-col")] = "text",
    label_col: Annotated[str, typer.Option("--label-col")] = "label",
) -> None:
    """Train a topic classifier on your labelled texts (a fifth kept aside to report)."""
    from monitor.train.topic_training import train_topic_model

    result = train_topic_model(state(ctx).settings, data, text_col=text_col, label_col=label_col)
    report = result.report
    if result.n_holdout:
        console.print(
            f"trained on {result.n_train} texts; kept aside {result.n_holdout}: accuracy "
            f"{report['accuracy']}, macro-F1 {report['macro_f1']}, ECE {report['ece']}"
        )
    else:
        console.print(
            f"trained on {result.n_train} texts; too few to keep any aside (60 or more needed)"
        )
    console.print(
        f"use it: SIMMIM_MONITOR__TOPIC_MODEL={result.folder} then `simmim monitor rescore`"
    )
