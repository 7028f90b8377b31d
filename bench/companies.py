"""Company recognition: recall and precision of the extractor on labelled texts.

    python bench/companies.py --data ../shared/data/sentfin/entities.csv \
        --data ../shared/data/finentity/entities.csv --data tests/data/company_hard_cases.csv

Each file has a ``text`` column and a ``company`` column (or ``entity``: an annotated
entity, which may be no company at all), one row per company named, the name as a person
writes it; an empty company means the text names none. Rows are grouped by text.

- **recall**: of the rows whose company is in the universe (the name resolves to one
  company by its names and aliases; not by symbol, so "IT" or "auto" is no company, nor is a
  name too generic to be one alone, such as "Dow" or "Nasdaq"), the share whose company the extractor finds in the text;
- **precision**: of the companies found, the share that the text's rows name (resolved the
  same way); a text with an empty-company row counts every company found as wrong.
- texts/s of ``extract``; the set of rows outside the universe is counted, not scored.

Progress goes to stderr; the last line on stdout is one JSON object with ``recall`` and
``precision`` over all files, and the same per file.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from monitor.tickers import GENERIC_NAMES, TickerExtractor  # noqa: E402


def read(path: Path) -> dict[str, list[str]]:
    """text → the companies its rows name ("" for a row that names none)."""
    out: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        column = "company" if "company" in (reader.fieldnames or ()) else "entity"
        for row in reader:
            out.setdefault(row["text"], []).append((row.get(column) or "").strip())
    return out


def measure(extractor: TickerExtractor, texts: dict[str, list[str]]) -> dict[str, object]:
    universe = extractor.universe
    start = time.perf_counter()
    found = {text: extractor.extract(text) for text in texts}
    elapsed = time.perf_counter() - start
    in_universe = hits = outside = 0
    right = wrong = 0
    for text, names in texts.items():
        expected = set()
        for name in names:
            if not name:
                continue
            company = universe.resolve(name, symbols=False)
            if company is None or name.lower() in GENERIC_NAMES:
                outside += 1
                continue
            expected.add(company.id)
            in_universe += 1
            hits += company.id in found[text]
        for company_id in found[text]:
            if company_id in expected:
                right += 1
            elif "" in names or expected:
                wrong += 1  # the text's rows name others, or none
    return {
        "texts": len(texts),
        "rows_in_universe": in_universe,
        "rows_outside": outside,
        "recall": round(hits / max(1, in_universe), 4),
        "precision": round(right / max(1, right + wrong), 4),
        "found": right + wrong,
        "texts_per_s": round(len(texts) / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, action="append", required=True)
    args = parser.parse_args()
    extractor = TickerExtractor()
    print(f"universe: {len(extractor.universe)} companies", file=sys.stderr)
    per_file = {}
    every: dict[str, list[str]] = {}
    for path in args.data:
        texts = read(path)
        per_file[str(path)] = measure(extractor, texts)
        print(f"{path}: {json.dumps(per_file[str(path)])}", file=sys.stderr)
        for text, names in texts.items():
            every.setdefault(text, []).extend(names)
    total = measure(extractor, every)
    print(json.dumps({**total, "files": per_file}))


if __name__ == "__main__":
    main()
