"""Rebuild the shipped default ``finance`` sentiment model (maintainers, not users).

    python -m monitor.train.build_sentiment \
        --data ../shared/data/twitter_financial_news/train.csv \
        --data ../shared/data/sentfin/train.csv --data ../shared/data/finentity/train.csv \
        --entities ../shared/data/sentfin/entities.csv --entities ../shared/data/finentity/entities.csv

Trains on the *train* split of each labelled set (``--label-map`` maps the tweets' 0/1/2;
word labels pass through), each set one domain named after its folder, plus generated
news-style sentences (``news_templates``) as a domain of their own; with ``--entities``, the
clauses about each entity of the train-split texts that name several (labelled per entity). Every choice is made on
the worst domain's held-out part (see ``finance_training``). Writes
``monitor/sentiment/default_model/`` and prints the held-out figures per domain as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

from monitor.sentiment.finance_model import DEFAULT_MODEL_DIR
from monitor.sentiment.learned import read_labelled_csv
from monitor.sentiment.per_ticker import NamedEntities, ticker_clauses
from monitor.train import news_templates
from monitor.train.finance_training import fit_finance_model
from simmim.settings import default_cache_dir

TEMPLATES_DOMAIN = "templates"


def domain_of(path: Path) -> str:
    """``…/sentfin/train.csv`` → ``sentfin``; a file with a name of its own keeps it."""
    generic = ("train", "valid", "test", "dev", "entities")
    return path.parent.name if path.stem in generic else path.stem


def entity_clauses(path: Path, split: str = "train") -> list[tuple[str, str, str]]:
    """(clause, label, whole text) for each entity of a ``split`` text whose clauses tell its entities
    apart: what per-company scoring will feed the model ("X rose while Y fell" → "Y fell").
    Texts with one entity, or whose entities share every clause, add nothing new."""
    by_text: dict[str, list[tuple[str, str]]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("split", split) == split:
                by_text.setdefault(row["text"], []).append((row["entity"], row["label"]))
    out = []
    for text, rows in by_text.items():
        found = NamedEntities([name for name, _ in rows])
        plan = ticker_clauses(text, found.names, found)
        out += [(clause, label, text) for name, label in rows if (clause := plan.get(name))]
    return list(dict.fromkeys(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument(
        "--entities",
        type=Path,
        action="append",
        default=[],
        help="per-entity labels (text,entity,label,split): their train clauses join the "
        "domain of the folder they are in",
    )
    parser.add_argument("--label-map", default="0=negative,1=positive,2=neutral")
    parser.add_argument("--news", type=int, default=4000, help="generated news sentences")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    label_map = dict(pair.split("=", 1) for pair in args.label_map.split(",") if pair)
    texts: list[str] = []
    labels: list[str] = []
    domains: list[str] = []
    keys: list[str] = []  # what decides the held-out side
    for path in args.data:
        more, more_labels = read_labelled_csv(
            path, text_col="text", label_col="label", label_map=label_map
        )
        texts += more
        labels += more_labels
        domains += [domain_of(path)] * len(more)
        keys += more
    for path in args.entities:
        for clause, label, whole in entity_clauses(path):
            texts.append(clause)
            labels.append(label)
            domains.append(domain_of(path))
            keys.append(whole)
    for sentence, label in news_templates.generate(args.news):
        texts.append(sentence)
        labels.append(label)
        domains.append(TEMPLATES_DOMAIN)
        keys.append(sentence)
    result = fit_finance_model(
        texts,
        labels,
        args.out,
        domains=domains,
        train_only=(TEMPLATES_DOMAIN,),  # made up: trained on, never judged
        split_keys=keys,
        cache_dir=default_cache_dir(),
    )
    summary = {
        "n_train": result.n_train,
        "n_holdout": result.n_holdout,
        "holdout": result.holdout,
        "domains": result.domains,
    }
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
