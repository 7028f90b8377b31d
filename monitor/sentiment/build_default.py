"""Rebuild the shipped default ``finance`` sentiment model (maintainers, not users).

    python -m monitor.sentiment.build_default \
        --data ../shared/data/twitter_financial_news/train.csv --label-map 0=negative,1=positive,2=neutral

Trains on the given labelled posts (the *train* split only) plus generated news-style
sentences (``news_templates``), and writes ``monitor/sentiment/default_model/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from monitor.sentiment import news_templates
from monitor.sentiment.finance_model import DEFAULT_MODEL_DIR
from monitor.sentiment.finance_training import fit_finance_model
from monitor.sentiment.learned import read_labelled_csv
from simmim.settings import default_cache_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--label-map", default="0=negative,1=positive,2=neutral")
    parser.add_argument("--news", type=int, default=2500, help="generated news sentences")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    label_map = dict(pair.split("=", 1) for pair in args.label_map.split(",") if pair)
    texts, labels = read_labelled_csv(
        args.data, text_col="text", label_col="label", label_map=label_map
    )
    for sentence, label in news_templates.generate(args.news):
        texts.append(sentence)
        labels.append(label)
    result = fit_finance_model(texts, labels, args.out, cache_dir=default_cache_dir())
    summary = {"n_train": result.n_train, "n_holdout": result.n_holdout, "holdout": result.holdout}
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
