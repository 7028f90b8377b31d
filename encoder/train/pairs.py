"""Image-text pairs for training: from a CSV/JSONL file or from stored items."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, or_, select

from encoder.errors import EncoderError
from simmim.db import session_factory, session_scope
from simmim.models import Item, ItemStatus, item_text
from simmim.paths import DataLayout


@dataclass(frozen=True)
class Pair:
    image: Path
    text: str


def read_pairs_file(path: Path, *, image_col: str = "image", text_col: str = "text") -> list[Pair]:
    """CSV with a header, or JSONL; image paths may be relative to the file's folder."""
    if not path.is_file():
        raise EncoderError(f"training data {path} does not exist", hint="give a CSV or JSONL file")
    is_jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    rows: list[dict[str, object]] = list(_jsonl_rows(path) if is_jsonl else _csv_rows(path))
    pairs = []
    for number, row in enumerate(rows, start=1 if is_jsonl else 2):  # CSV: line 1 is the header
        if image_col not in row or text_col not in row:
            raise EncoderError(
                f"{path}, record {number}: needs fields {image_col!r} and {text_col!r}, has {sorted(row)}",
                hint="rename the columns or pass --image-col / --text-col",
            )
        image, text = str(row[image_col] or "").strip(), str(row[text_col] or "").strip()
        if image and text:
            image_path = Path(image).expanduser()
            pairs.append(
                Pair(image_path if image_path.is_absolute() else path.parent / image_path, text)
            )
    if not pairs:
        raise EncoderError(f"{path} holds no pair with both an image and a text")
    return pairs


def _csv_rows(path: Path) -> Iterator[dict[str, object]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _jsonl_rows(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EncoderError(f"{path}, line {number}: not JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise EncoderError(f"{path}, line {number}: expected an object")
            yield record


@dataclass(frozen=True)
class CorpusPair:
    item_id: int
    image_sha256: str
    pair: Pair


def corpus_pairs(engine: Engine, layout: DataLayout) -> list[CorpusPair]:
    """Every stored item (not failed) with an image on disk and some text, by id."""
    query = (
        select(Item.id, Item.title, Item.text, Item.image_sha256)
        .where(Item.image_sha256.is_not(None), Item.status != ItemStatus.FAILED)
        .order_by(Item.id)
    )
    out = []
    with session_scope(session_factory(engine)) as session:
        for item_id, title, body, sha in session.execute(query):
            assert sha is not None  # filtered above
            text = item_text(title, body)
            path = layout.image_path(sha)
            if text and path.is_file():
                out.append(CorpusPair(item_id, sha, Pair(path, text)))
    return out


def count_corpus_items(engine: Engine) -> int:
    """Items (not failed) that carry an image and some text: what self-training counts to
    decide that enough is new (a count, without reading files)."""
    has_text = or_(func.length(Item.title) > 0, func.length(Item.text) > 0)
    query = select(func.count(Item.id)).where(
        Item.image_sha256.is_not(None), Item.status != ItemStatus.FAILED, has_text
    )
    with session_scope(session_factory(engine)) as session:
        return int(session.scalar(query) or 0)


def pairs_from_items(engine: Engine, layout: DataLayout) -> list[Pair]:
    """Every stored item that has both an image on disk and some text."""
    pairs = [p.pair for p in corpus_pairs(engine, layout)]
    if not pairs:
        raise EncoderError(
            "the database holds no item with both an image and text",
            hint="crawl some sources first, or pass --data FILE with (image, text) pairs",
        )
    return pairs
