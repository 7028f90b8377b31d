"""Reconcile: make indexes and database agree before writing (after a crash between
"save" and "mark", or vectors the database no longer vouches for)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine, select, update

from indexer.index import SPACES, StoreSet
from simmim.db import session_factory, session_scope
from simmim.models import Item, ItemStatus


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
