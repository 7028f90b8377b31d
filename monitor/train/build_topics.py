"""Rebuild the shipped default topic classifier (maintainers, not users).

    python -m monitor.train.build_topics --data ../shared/data/twitter_financial_news_topic/train.csv

Trains on 4/5 of the file (its 20 topics; a fifth is kept aside by a hash of the text and
only reported on; see ``topic_training``) and writes ``monitor/topic_default/``. The data:
the twitter-financial-news-topic set (zeroshot, MIT), finance tweets of news accounts.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

from monitor.topic_model import DEFAULT_TOPIC_MODEL_DIR
from monitor.train.topic_training import fit_topic_model
from simmim.settings import default_cache_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=DEFAULT_TOPIC_MODEL_DIR)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    with args.data.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    result = fit_topic_model(
        [r["text"] for r in rows],
        [r["label"] for r in rows],
        args.out,
        cache_dir=default_cache_dir(),
        epochs=args.epochs,
        source=args.data.parent.name,
    )
    report = {k: v for k, v in result.report.items() if k != "topics"}
    sys.stdout.write(json.dumps({"n_train": result.n_train, **report}) + "\n")


if __name__ == "__main__":
    main()
