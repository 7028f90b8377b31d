"""Ingest split for many workers: any number encode, one writes the index.

``encode_claimed`` claims a batch of pending items with ``FOR UPDATE SKIP LOCKED`` (no two
workers take the same item; a worker that dies releases its claim with its connection),
encodes it, and stages the vectors in the database in the same transaction.
``write_staged`` (one at a time: the ``index`` lock) adds staged vectors to the stores,
saves them, then marks the items and drops the staged rows in one transaction: the same
save-then-mark order as the single-process ingest, so a crash anywhere leaves either a
staged row to write again or a vector reconcile removes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Engine, Row, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from encoder import Encoder
from indexer.index import SPACES, StoreSet
from indexer.index.protocol import timestamp
from indexer.pipeline.batch import EncodedItems, EncodedRow, IngestSummary, batch_of, rows_of
from indexer.pipeline.local import encode_rows
from indexer.pipeline.reconcile import reconcile as reconcile_stores
from indexer.pipeline.writer import IndexWriter, add_encoded
from simmim.clock import utcnow
from simmim.db import session_factory, session_scope
from simmim.models import Item, ItemStatus, StagedVectors
from simmim.paths import DataLayout

log = logging.getLogger(__name__)
WRITE_CHUNK = 2000  # staged rows read and added per round


@dataclass
class EncodeOutcome:
    claimed: int = 0  # items this call encoded
    staged: int = 0  # ... and left for the writer
    written: int = 0  # ... or wrote to shared stores and marked itself
    unreadable_images: int = 0


# Pending items no worker has encoded yet.
UNSTAGED_PENDING = (
    Item.status == ItemStatus.PENDING,
    ~exists().where(StagedVectors.item_id == Item.id),
)


def unstaged_pending(engine: Engine) -> int:
    """What encode tasks are still needed for."""
    with session_scope(session_factory(engine)) as session:
        return session.scalar(select(func.count(Item.id)).where(*UNSTAGED_PENDING)) or 0


def staged_count(engine: Engine) -> int:
    with session_scope(session_factory(engine)) as session:
        return session.scalar(select(func.count(StagedVectors.item_id))) or 0


def encode_claimed(
    engine: Engine,
    encoder: Encoder,
    layout: DataLayout,
    *,
    batch: int,
    direct: StoreSet | None = None,
) -> EncodeOutcome:
    """Claim up to ``batch`` pending, unstaged items nobody holds, encode and stage them.

    With ``direct`` (stores that take writes from many processes: a Milvus server, every
    space created) the vectors go there instead, are saved, and the items are marked in
    the claim's own transaction: no staging, no writer."""
    factory = session_factory(engine)
    with session_scope(factory) as session:
        rows = list(
            session.scalars(
                select(Item)
                .where(*UNSTAGED_PENDING)
                .order_by(Item.id)
                .limit(batch)
                .with_for_update(skip_locked=True, of=Item)
            )
        )
        if not rows:
            return EncodeOutcome()
        encoded = encode_rows(encoder, layout, rows)
        outcome = EncodeOutcome(claimed=len(rows), unreadable_images=encoded.unreadable_images)
        if direct is not None:
            direct.save(add_encoded(direct, encoded, IngestSummary()))  # durable first ...
            session.execute(update(Item), encoded.marks)  # ... then marked, as the claim ends
            outcome.written = len(rows)
            return outcome
        insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert
        # A claim that raced a commit (the row was free, its staged row not yet visible)
        # re-encodes the same item: the first staged copy stands.
        session.execute(
            insert(StagedVectors).on_conflict_do_nothing(index_elements=["item_id"]),
            _staged_rows(encoded, encoder.fingerprint),
        )
        outcome.staged = len(rows)
    return outcome


def _staged_rows(encoded: EncodedItems, fingerprint: str) -> list[dict[str, object]]:
    """The batch's rows as staged rows (vectors as little-endian float32 bytes; the item's
    source and time are joined back from the item when written)."""
    staged_at = utcnow()
    return [
        {
            "item_id": row.item_id,
            "fingerprint": fingerprint,
            "indexed_spaces": row.bits,
            "error": row.error,
            "staged_at": staged_at,
            **{
                space.value: _to_bytes(row.vectors[space]) if space in row.vectors else None
                for space in SPACES
            },
        }
        for row in rows_of(encoded)
    ]


def _to_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def write_staged(
    engine: Engine,
    stores: StoreSet,
    fingerprint: str,
    dim: int,
    *,
    limit: int = 100_000,
    reconcile: bool = True,
) -> IngestSummary:
    """Staged vectors of this model into the stores (reconciled first, unless asked not
    to), saved, then marked.

    Rows staged by another model are dropped: their items stay pending and are encoded
    again by the current one."""
    factory = session_factory(engine)
    summary = IngestSummary()
    if reconcile:
        summary.requeued, summary.removed = reconcile_stores(engine, stores)
    with session_scope(factory) as session:
        stale = session.execute(
            delete(StagedVectors).where(StagedVectors.fingerprint != fingerprint)
        )
        if stale.rowcount:  # type: ignore[attr-defined]
            log.warning(
                "dropped %d staged vector row(s) of another model; those items are encoded again",
                stale.rowcount,  # type: ignore[attr-defined]
            )
    writer = IndexWriter(engine, stores, save_every_s=math.inf)
    written: list[int] = []
    last = 0
    while len(written) < limit:
        with session_scope(factory) as session:
            rows = session.execute(
                select(StagedVectors, Item.source_id, Item.published_at)
                .join(Item, Item.id == StagedVectors.item_id)
                .where(StagedVectors.fingerprint == fingerprint, StagedVectors.item_id > last)
                .order_by(StagedVectors.item_id)
                .limit(WRITE_CHUNK)
            ).all()
        if not rows:
            break
        last = rows[-1][0].item_id
        writer.add(_as_encoded(rows, dim), summary)
        written += [row[0].item_id for row in rows]
    if not written:
        return summary

    def drop_staged(session: Session) -> None:
        for start in range(0, len(written), 1000):
            chunk = written[start : start + 1000]
            session.execute(delete(StagedVectors).where(StagedVectors.item_id.in_(chunk)))

    writer.flush(also=drop_staged)  # durable first, then the marks with the staged rows gone
    grown = [space for space in SPACES if stores.grow_if_needed(space)]
    if grown:
        stores.save()
        summary.rebuilt = grown
    return summary


def _as_encoded(rows: Sequence[Row[StagedVectors, int, datetime | None]], dim: int) -> EncodedItems:
    """Staged rows (with each item's source and time) as the batch the writer takes."""
    return batch_of(
        _row(staged, source_id, published_at, dim) for staged, source_id, published_at in rows
    )


def _row(
    staged: StagedVectors, source_id: int, published_at: datetime | None, dim: int
) -> EncodedRow:
    vectors = {}
    for space in SPACES:
        blob = getattr(staged, space.value)
        if blob is None:
            continue
        vector = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        if len(vector) != dim:
            raise ValueError(
                f"staged {space.value} vectors have {len(vector)} dimensions, the index "
                f"{dim}: staged by a model with the same fingerprint but another size; "
                "clear indexer_staged_vectors and index again"
            )
        vectors[space] = vector
    return EncodedRow(
        staged.item_id,
        staged.indexed_spaces,
        staged.error,
        source_id,
        timestamp(published_at),
        vectors,
    )
