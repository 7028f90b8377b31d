"""The ingest pipeline: pending items → encoder → indexes (saved durably) → items marked indexed.

Order matters for agreement between database and indexes: vectors are added, the index
files are saved (atomic rename), and only then are the items marked indexed. A crash in
between leaves items pending whose vectors are already in an index; the reconcile step at
the start of every run removes what the database does not vouch for and re-queues what
it vouches for but the index lacks, and adding is remove-then-add, so nothing is ever
duplicated.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Engine, func, select, update
from tqdm import tqdm

from encoder.encoder import Encoder, ItemInput, item_text
from indexer.index import SPACES
from indexer.index.chooser import IndexPlan, choose_index
from indexer.index.store import VectorIndex
from simmim.db import session_factory, session_scope
from simmim.models import SPACE_BITS, Item, ItemStatus
from simmim.paths import DataLayout
from simmim.settings import Settings

log = logging.getLogger(__name__)
TUNING_QUERIES = 500


@dataclass
class IngestSummary:
    indexed: int = 0
    failed: int = 0
    added: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPACES, 0))
    requeued: int = 0  # reconcile: the database said indexed, the index lacked them
    removed: int = 0  # reconcile: in an index, not vouched for by the database
    rebuilt: list[str] = field(default_factory=list)
    unreadable_images: int = 0  # indexed by their text only; the reason is in Item.error


class IndexSet:
    """The three spaces' indexes for one model fingerprint."""

    def __init__(
        self,
        settings: Settings,
        fingerprint: str,
        dim: int,
        *,
        read_only: bool = False,
        load: bool = True,
    ) -> None:
        self.folder = DataLayout(settings.data_dir).indexes
        self.config = settings.index
        self.fingerprint = fingerprint
        self.dim = dim
        self.spaces: dict[str, VectorIndex | None] = {
            space: VectorIndex.load(self.folder, space, fingerprint, read_only=read_only)
            if load
            else None
            for space in SPACES
        }

    def plan(self, count: int) -> IndexPlan:
        return choose_index(
            count, self.dim, self.config.memory_budget_mb << 20, self.config.recall_target
        )

    def get(self, space: str) -> VectorIndex:
        index = self.spaces[space]
        if index is None:
            plan = self.plan(0)
            index = VectorIndex.create(
                space, plan, self.dim, self.fingerprint, self.config.recall_target
            )
            self.spaces[space] = index
        return index

    def save(self, spaces: Iterable[str] = SPACES) -> None:
        for space in spaces:
            index = self.spaces[space]
            if index is not None:
                index.save(self.folder)

    def grow_if_needed(self, space: str) -> bool:
        """Rebuild a space whose size has outgrown its index type (e.g. Flat → IVF)."""
        index = self.spaces[space]
        if index is None or not index.count:
            return False
        plan = self.plan(index.count)
        if plan.factory == index.manifest.factory:
            return False
        log.info(
            "%s: %d vectors outgrew %s; rebuilding as %s",
            space,
            index.count,
            index.manifest.factory,
            plan.factory,
        )
        ids = index.ids()
        vectors = index.vectors(ids)
        self.spaces[space] = build_index(
            space, plan, ids, vectors, self.fingerprint, self.config.recall_target
        )
        return True


def build_index(
    space: str,
    plan: IndexPlan,
    ids: np.ndarray,
    vectors: np.ndarray,
    fingerprint: str,
    recall_target: float,
    *,
    seed: int = 0,
) -> VectorIndex:
    """Train on a sample, add everything, tune nprobe against exact search."""
    index = VectorIndex.create(space, plan, vectors.shape[1], fingerprint, recall_target)
    rng = np.random.default_rng(seed)
    if not index.index.is_trained:
        sample = vectors[rng.choice(len(vectors), size=min(len(vectors), 256 * 256), replace=False)]
        index.train(sample)
    for start in range(0, len(ids), 100_000):
        index.add(ids[start : start + 100_000], vectors[start : start + 100_000])
    sample = rng.choice(len(ids), size=min(len(ids), TUNING_QUERIES), replace=False)
    index.tune(ids[sample], recall_target)
    return index


def _pending_batches(engine: Engine, batch: int) -> Iterator[list[Item]]:
    factory = session_factory(engine)
    last = 0
    while True:
        with session_scope(factory) as session:
            rows = list(
                session.scalars(
                    select(Item)
                    .where(Item.status == ItemStatus.PENDING, Item.id > last)
                    .order_by(Item.id)
                    .limit(batch)
                )
            )
        if not rows:
            return
        last = rows[-1].id
        yield rows


def reconcile(engine: Engine, indexes: IndexSet) -> tuple[int, int]:
    """Make indexes and database agree: returns (requeued items, removed vectors)."""
    factory = session_factory(engine)
    requeue: set[int] = set()
    removed = 0
    for space in SPACES:
        index = indexes.spaces[space]
        bit = SPACE_BITS[space]
        in_index = set(index.ids().tolist()) if index is not None else set()
        with session_scope(factory) as session:
            vouched = set(
                session.scalars(
                    select(Item.id).where(
                        Item.status == ItemStatus.INDEXED, Item.indexed_spaces.op("&")(bit) != 0
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


def clear(engine: Engine, indexes: IndexSet) -> None:
    """For --rebuild: drop the index files and queue every usable item again."""
    shutil.rmtree(indexes.folder, ignore_errors=True)
    indexes.folder.mkdir(parents=True, exist_ok=True)
    indexes.spaces = dict.fromkeys(SPACES)
    with session_scope(session_factory(engine)) as session:
        session.execute(
            update(Item)
            .where(Item.status == ItemStatus.INDEXED)
            .values(status=ItemStatus.PENDING, indexed_spaces=0)
        )


def run_ingest(
    settings: Settings,
    engine: Engine,
    encoder: Encoder,
    *,
    rebuild: bool = False,
    batch: int = 512,
    progress: bool = False,
    save_every_s: float = 120.0,
) -> IngestSummary:
    """Index every pending item. Work since the last save (at most ``save_every_s`` of it)
    is what a crash can cost; the next run's reconcile puts it back in the queue."""
    layout = DataLayout(settings.data_dir)
    summary = IngestSummary()
    if rebuild:  # the old files may belong to another model: never load them
        indexes = IndexSet(settings, encoder.fingerprint, encoder.dim, load=False)
        clear(engine, indexes)
    else:
        indexes = IndexSet(settings, encoder.fingerprint, encoder.dim)
        summary.requeued, summary.removed = reconcile(engine, indexes)

    factory = session_factory(engine)
    with session_scope(factory) as session:
        total = (
            session.scalar(select(func.count(Item.id)).where(Item.status == ItemStatus.PENDING))
            or 0
        )
    bar = tqdm(total=total, desc="index", unit="item", delay=2, disable=not progress)
    marks: list[dict[str, object]] = []  # items whose vectors are added but not yet saved
    dirty: set[str] = set()
    last_save = time.monotonic()

    def flush() -> None:
        """Save the changed indexes durably, then mark their items: never the other way round."""
        indexes.save(dirty)
        with session_scope(factory) as session:
            for start in range(0, len(marks), 1000):
                session.execute(update(Item), marks[start : start + 1000])
        marks.clear()
        dirty.clear()

    for rows in _pending_batches(engine, batch):
        inputs = [
            ItemInput(
                text=item_text(row.title, row.text),
                image=layout.image_path(row.image_sha256) if row.image_sha256 else None,
                key=row.id,
            )
            for row in rows
        ]
        vectors: dict[str, list[np.ndarray]] = {s: [] for s in SPACES}
        space_ids: dict[str, list[int]] = {s: [] for s in SPACES}
        for encoded in encoder.encode_items(inputs):
            for row, key in enumerate(encoded.keys):
                has_image, has_text = encoded.has_image[row], encoded.has_text[row]
                present = {"image": has_image, "text": has_text, "fused": has_image or has_text}
                bits = 0
                for space in SPACES:
                    if present[space]:
                        bits |= SPACE_BITS[space]
                        vectors[space].append(getattr(encoded, space)[row])
                        space_ids[space].append(key)
                mark: dict[str, object] = {
                    "id": key,
                    "indexed_spaces": bits,
                    "status": ItemStatus.INDEXED if bits else ItemStatus.FAILED,
                }
                if row in encoded.errors:
                    mark["error"] = f"image: {encoded.errors[row]}"
                    summary.unreadable_images += 1
                marks.append(mark)
                summary.indexed += bool(bits)
                summary.failed += not bits
        for space in SPACES:
            if space_ids[space]:
                indexes.get(space).add(
                    np.asarray(space_ids[space], np.int64), np.stack(vectors[space])
                )
                summary.added[space] += len(space_ids[space])
                dirty.add(space)
        # Saving rewrites whole index files: every save_every_s, not every batch.
        if time.monotonic() - last_save >= save_every_s:
            flush()
            last_save = time.monotonic()
        bar.update(len(rows))
    flush()
    bar.close()

    grown = [space for space in SPACES if indexes.grow_if_needed(space)]
    if grown:
        indexes.save()
        summary.rebuilt = grown
    return summary
