"""The writer: vectors into their stores, then — only once the stores are saved — the
marks on the items. The one order that keeps database and indexes agreeing."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from indexer.index import SPACES, Space, StoreSet
from indexer.pipeline.batch import EncodedItems, IngestSummary
from simmim.db import session_factory, session_scope
from simmim.models import Item


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
