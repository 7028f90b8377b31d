"""The reader: the items to encode, in id order, one short transaction per batch."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Engine, func, select

from simmim.db import session_factory, session_scope
from simmim.models import Item, ItemStatus

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
