"""The ingest pipeline: reader (pending items) → encode (vectors) → writer (indexes, then marks).

``--rebuild`` re-encodes everything into a new set beside the live one and swaps it in
(FAISS: a new folder; Milvus: new collections): search never finds the indexes gone.
The stores are the configured backend's (:func:`indexer.index.open_stores`); this module
only speaks the ``StoreSet`` protocol.

Order matters for agreement between database and indexes: the writer adds vectors, saves
the index files (atomic rename), and only then marks the items indexed. A crash in between
leaves items pending whose vectors are already in an index; the reconcile step at the
start of every run removes what the database does not vouch for and re-queues what it
vouches for but the index lacks, and adding is remove-then-add, so nothing is ever
duplicated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session
from tqdm import tqdm

from encoder import EncodedBatch, Encoder, ItemInput
from encoder.stage_times import StageTimes
from indexer.index import (
    SPACES,
    Space,
    StoreSet,
    VectorMeta,
    open_stores,
    recover_stores,
)
from indexer.index.protocol import timestamp
from simmim.db import session_factory, session_scope
from simmim.models import Item, ItemStatus, item_text
from simmim.paths import DataLayout
from simmim.settings import Settings

if TYPE_CHECKING:
    from indexer.ray_encode import RayOptions

log = logging.getLogger(__name__)


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


# ---- reader


USABLE = (ItemStatus.INDEXED, ItemStatus.PENDING)  # what a rebuild encodes; failed stay failed


def item_batches(
    engine: Engine, batch: int, statuses: tuple[ItemStatus, ...] = (ItemStatus.PENDING,)
) -> Iterator[list[Item]]:
    """Items in these states in id order, one short transaction per batch."""
    factory = session_factory(engine)
    last = 0
    while True:
        with session_scope(factory) as session:
            rows = list(
                session.scalars(
                    select(Item)
                    .where(Item.status.in_(statuses), Item.id > last)
                    .order_by(Item.id)
                    .limit(batch)
                )
            )
        if not rows:
            return
        last = rows[-1].id
        yield rows


def count_items(engine: Engine, statuses: tuple[ItemStatus, ...] = (ItemStatus.PENDING,)) -> int:
    """How many items :func:`item_batches` will yield (for the progress bar)."""
    with session_scope(session_factory(engine)) as session:
        return session.scalar(select(func.count(Item.id)).where(Item.status.in_(statuses))) or 0


# ---- encode


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


def encoded_batches(
    settings: Settings,
    engine: Engine,
    encoder: Encoder,
    statuses: tuple[ItemStatus, ...],
    *,
    batch: int,
    ray: RayOptions | None = None,
    timings: StageTimes | None = None,
) -> Iterator[EncodedItems]:
    """The items in ``statuses``, encoded here or on Ray: the same vectors either way
    (stage seconds only of encoding here: Ray's workers keep their own)."""
    if ray is not None:
        from indexer.ray_encode import ray_encoded_batches

        yield from ray_encoded_batches(settings, engine, statuses, ray)
        return
    layout = DataLayout(settings.data_dir)
    for rows in item_batches(engine, batch, statuses):
        yield encode_rows(encoder, layout, rows, timings)


def encode_rows(
    encoder: Encoder, layout: DataLayout, rows: list[Item], timings: StageTimes | None = None
) -> EncodedItems:
    inputs = [
        ItemInput(
            text=item_text(row.title, row.text),
            image=layout.image_path(row.image_sha256) if row.image_sha256 else None,
            thumbnail=(
                layout.thumbnail_path(row.image_sha256, encoder.thumbnail_size)
                if row.image_sha256 and encoder.thumbnail_size
                else None
            ),
            key=row.id,
        )
        for row in rows
    ]
    out = EncodedItems(
        fields={row.id: (row.source_id, timestamp(row.published_at)) for row in rows}
    )
    for encoded in encoder.encode_items(inputs, timings=timings):
        out.take(encoded)
    return out


# ---- writer


def add_encoded(indexes: StoreSet, batch: EncodedItems, summary: IngestSummary) -> set[Space]:
    """A batch's vectors into their spaces' stores; returns the spaces it changed."""
    changed = set()
    for space in SPACES:
        if batch.ids[space]:
            indexes.get(space).add(
                np.asarray(batch.ids[space], np.int64),
                np.stack(batch.vectors[space]),
                batch.meta(space),
            )
            summary.added[space] += len(batch.ids[space])
            changed.add(space)
    return changed


class IndexWriter:
    """Owns "save the index, then mark the items": the one order that keeps them agreeing."""

    def __init__(self, engine: Engine, indexes: StoreSet, *, save_every_s: float) -> None:
        self.factory = session_factory(engine)
        self.indexes = indexes
        self.save_every_s = save_every_s
        self.marks: list[dict[str, object]] = []  # vectors added, index not yet saved
        self.dirty: set[Space] = set()
        self.last_save = time.monotonic()

    def write(self, batch: EncodedItems, summary: IngestSummary) -> None:
        self.add(batch, summary)
        # Saving rewrites whole index files: every save_every_s, not every batch.
        if time.monotonic() - self.last_save >= self.save_every_s:
            self.flush()

    def add(self, batch: EncodedItems, summary: IngestSummary) -> None:
        """Vectors into the indexes, marks kept until the indexes are saved."""
        self.dirty |= add_encoded(self.indexes, batch, summary)
        self.marks.extend(batch.marks)
        for mark in batch.marks:
            summary.indexed += bool(mark["indexed_spaces"])
            summary.failed += not mark["indexed_spaces"]
        summary.unreadable_images += batch.unreadable_images

    def flush(self, also: Callable[[Session], None] | None = None) -> None:
        """Save the changed indexes durably, then mark their items: never the other way round.
        ``also`` runs in the marks' transaction (the workers' writer drops staged rows)."""
        self.indexes.save(self.dirty)
        self.mark(also)

    def mark(self, also: Callable[[Session], None] | None = None) -> None:
        """Record on the items what the saved indexes hold."""
        with session_scope(self.factory) as session:
            for start in range(0, len(self.marks), 1000):
                session.execute(update(Item), self.marks[start : start + 1000])
            if also is not None:
                also(session)
        self.marks.clear()
        self.dirty.clear()
        self.last_save = time.monotonic()


# ---- keeping database and indexes in agreement


def reconcile(engine: Engine, indexes: StoreSet) -> tuple[int, int]:
    """Make indexes and database agree: returns (requeued items, removed vectors)."""
    factory = session_factory(engine)
    requeue: set[int] = set()
    removed = 0
    for space in SPACES:
        index = indexes.spaces[space]
        in_index = set(index.ids().tolist()) if index is not None else set()
        with session_scope(factory) as session:
            vouched = set(
                session.scalars(
                    select(Item.id).where(
                        Item.status == ItemStatus.INDEXED,
                        Item.indexed_spaces.op("&")(space.bit) != 0,
                    )
                )
            )
        requeue |= vouched - in_index
        extra = in_index - vouched
        if extra and index is not None:
            removed += index.remove(np.fromiter(extra, dtype=np.int64))
    if requeue:
        with session_scope(factory) as session:
            ids = sorted(requeue)
            for start in range(0, len(ids), 500):
                session.execute(
                    update(Item)
                    .where(Item.id.in_(ids[start : start + 500]))
                    .values(status=ItemStatus.PENDING, indexed_spaces=0)
                )
    if removed:
        indexes.save()
    return len(requeue), removed


def rebuild_indexes(
    settings: Settings,
    engine: Engine,
    encoder: Encoder,
    *,
    batch: int = 512,
    progress: bool = False,
    ray: RayOptions | None = None,
) -> IngestSummary:
    """Re-encode every usable item into a new set beside the live one, then swap it in.

    Search keeps reading the old set until the swap; a crash before it leaves the old set
    as it was (the next index run removes the half-built one), a crash after it leaves the
    new set, and the next run's reconcile settles any item marked differently."""
    # The old stores may belong to another model: never load them, only replace them.
    with closing(open_stores(settings, encoder.fingerprint, encoder.dim, load=False)) as live:
        total = count_items(engine, USABLE)
        indexes = live.start_rebuild(expected=total)
        writer = IndexWriter(engine, indexes, save_every_s=float("inf"))
        summary = IngestSummary()
        bar = tqdm(
            total=total,
            desc="rebuild",
            unit="item",
            delay=2,
            disable=not progress,
        )
        batches = encoded_batches(
            settings, engine, encoder, USABLE, batch=batch, ray=ray, timings=summary.stages
        )
        for encoded in batches:
            with summary.stages.timing("write"):
                writer.add(encoded, summary)
            bar.update(len(encoded.marks))
        bar.close()
        summary.rebuilt = [space for space in SPACES if indexes.grow_if_needed(space)]
        live.finish_rebuild(indexes)
        writer.mark()  # only now: until the swap the database describes the old set
    log_stages(summary)
    return summary


def run_ingest(
    settings: Settings,
    engine: Engine,
    encoder: Encoder,
    *,
    rebuild: bool = False,
    batch: int = 512,
    progress: bool = False,
    save_every_s: float = 120.0,
    ray: RayOptions | None = None,
) -> IngestSummary:
    """Index every pending item. Work since the last save (at most ``save_every_s`` of it)
    is what a crash can cost; the next run's reconcile puts it back in the queue."""
    for done in recover_stores(settings):  # an interrupted rebuild: finished or undone first
        log.warning("indexes: %s", done)
    if rebuild:
        return rebuild_indexes(settings, engine, encoder, batch=batch, progress=progress, ray=ray)
    summary = IngestSummary()
    with closing(open_stores(settings, encoder.fingerprint, encoder.dim)) as indexes:
        summary.requeued, summary.removed = reconcile(engine, indexes)
        writer = IndexWriter(engine, indexes, save_every_s=save_every_s)
        bar = tqdm(
            total=count_items(engine), desc="index", unit="item", delay=2, disable=not progress
        )
        pending = (ItemStatus.PENDING,)
        batches = encoded_batches(
            settings, engine, encoder, pending, batch=batch, ray=ray, timings=summary.stages
        )
        for encoded in batches:
            with summary.stages.timing("write"):
                writer.write(encoded, summary)
            bar.update(len(encoded.marks))
        with summary.stages.timing("write"):
            writer.flush()
        bar.close()
        grown = [space for space in SPACES if indexes.grow_if_needed(space)]
        if grown:
            indexes.save()
            summary.rebuilt = grown
    log_stages(summary)
    return summary


def log_stages(summary: IngestSummary) -> None:
    """What ``simmim -v index`` prints of the pipeline: where the time went."""
    log.info("stages (seconds, summed over threads): %s", summary.stages.line())
