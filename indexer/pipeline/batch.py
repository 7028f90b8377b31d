"""What flows between the pipeline's stages: a batch of encoded items, its one row codec
(the Ray stage's columns and the workers' staged rows are both rows of it), and the
ingest summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from encoder import EncodedBatch
from encoder.stage_times import StageTimes
from indexer.index import SPACES, Space, VectorMeta
from simmim.models import ItemStatus


@dataclass
class IngestSummary:
    indexed: int = 0
    failed: int = 0
    added: dict[Space, int] = field(default_factory=lambda: dict.fromkeys(SPACES, 0))
    requeued: int = 0  # reconcile: the database said indexed, the index lacked them
    removed: int = 0  # reconcile: in an index, not vouched for by the database
    rebuilt: list[Space] = field(default_factory=list)
    unreadable_images: int = 0  # indexed by their text only; the reason is in Item.error
    stages: StageTimes = field(default_factory=StageTimes)  # read … model here, write too


@dataclass
class EncodedItems:
    """One batch's vectors per space, and what to record on each item once they are saved."""

    vectors: dict[Space, list[np.ndarray]] = field(default_factory=lambda: {s: [] for s in SPACES})
    ids: dict[Space, list[int]] = field(default_factory=lambda: {s: [] for s in SPACES})
    marks: list[dict[str, object]] = field(default_factory=list)
    unreadable_images: int = 0
    fields: dict[int, tuple[int, int]] = field(default_factory=dict)  # id → (source, time)

    def meta(self, space: Space) -> VectorMeta:
        """The stored fields (source, time) of this space's vectors, aligned with its ids."""
        return VectorMeta.lookup(self.fields, self.ids[space])

    def take(self, encoded: EncodedBatch) -> None:
        for row, key in enumerate(encoded.keys):
            has_image, has_text = bool(encoded.has_image[row]), bool(encoded.has_text[row])
            present = {
                Space.IMAGE: has_image,
                Space.TEXT: has_text,
                Space.FUSED: has_image or has_text,
            }
            bits = 0
            for space in SPACES:
                if present[space]:
                    bits |= space.bit
                    self.vectors[space].append(getattr(encoded, space)[row])
                    self.ids[space].append(key)
            error = f"image: {encoded.errors[row]}" if row in encoded.errors else None
            self.unreadable_images += error is not None
            self.marks.append(mark_for(key, bits, error))


def mark_for(item_id: int, bits: int, error: str | None) -> dict[str, object]:
    """What to record on an item once its vectors (``bits``: which spaces) are saved."""
    mark: dict[str, object] = {
        "id": item_id,
        "indexed_spaces": bits,
        "status": ItemStatus.INDEXED if bits else ItemStatus.FAILED,
    }
    if error:
        mark["error"] = error
    return mark


@dataclass
class EncodedRow:
    """One item of a batch: the codec's unit. ``vectors`` holds the spaces ``bits`` names."""

    item_id: int
    bits: int
    error: str | None
    source_id: int
    published_ts: int
    vectors: dict[Space, np.ndarray]


def rows_of(batch: EncodedItems) -> list[EncodedRow]:
    vectors = {
        space: dict(zip(batch.ids[space], batch.vectors[space], strict=True)) for space in SPACES
    }
    rows = []
    for mark in batch.marks:
        item_id = int(mark["id"])  # type: ignore[call-overload]
        source_id, published_ts = batch.fields[item_id]
        rows.append(
            EncodedRow(
                item_id,
                int(mark["indexed_spaces"]),  # type: ignore[call-overload]
                str(mark["error"]) if mark.get("error") else None,
                source_id,
                published_ts,
                {s: vectors[s][item_id] for s in SPACES if item_id in vectors[s]},
            )
        )
    return rows


def batch_of(rows: Iterable[EncodedRow]) -> EncodedItems:
    out = EncodedItems()
    for row in rows:
        for space in SPACES:
            if row.bits & space.bit:
                out.ids[space].append(row.item_id)
                out.vectors[space].append(np.asarray(row.vectors[space], np.float32))
        out.marks.append(mark_for(row.item_id, row.bits, row.error))
        out.unreadable_images += row.error is not None
        out.fields[row.item_id] = (row.source_id, row.published_ts)
    return out
