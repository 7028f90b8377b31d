"""Copy the vectors of one backend into the other (`simmim index migrate --to milvus`).

The copy is exact when the source holds full vectors for the current model; it re-encodes
instead when the source was built by another model (its vectors would not match queries)
or holds compressed (PQ) codes (a copy would keep their loss forever). The target is
built beside whatever it held and swapped in, like a rebuild; the source is left as it
was, so switching back is one setting.
"""

from __future__ import annotations

import logging
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Engine, select

from encoder import Encoder
from indexer.index import SPACES, StoreSet, VectorMeta, open_stores, recover_stores
from indexer.index.manifest import IndexFileError
from indexer.index.protocol import timestamp
from indexer.pipeline.runner import rebuild_indexes
from simmim.db import session_factory, session_scope
from simmim.models import Item
from simmim.settings import Settings

log = logging.getLogger(__name__)
COPY_BATCH = 20_000


@dataclass
class MigrateSummary:
    source: str
    target: str
    copied: dict[str, int] = field(default_factory=dict)
    reencoded: bool = False
    reason: str = ""  # why it re-encoded instead of copying


def with_backend(settings: Settings, backend: str, milvus_uri: str | None = None) -> Settings:
    index = settings.index.model_copy(
        update={"backend": backend, **({"milvus_uri": milvus_uri} if milvus_uri else {})}
    )
    return settings.model_copy(update={"index": index})


def item_fields(engine: Engine, ids: np.ndarray) -> VectorMeta:
    """Source and publication time of these items, aligned with ``ids``."""
    found: dict[int, tuple[int, int]] = {}
    wanted = [int(i) for i in ids]
    with session_scope(session_factory(engine)) as session:
        for start in range(0, len(wanted), 5000):
            rows = session.execute(
                select(Item.id, Item.source_id, Item.published_at).where(
                    Item.id.in_(wanted[start : start + 5000])
                )
            )
            found.update({row.id: (row.source_id, timestamp(row.published_at)) for row in rows})
    return VectorMeta.lookup(found, wanted)


def migrate_index(
    settings: Settings, engine: Engine, encoder: Encoder, target: Settings
) -> MigrateSummary:
    """Fill ``target``'s backend from ``settings``'s (run under the index lock)."""
    summary = MigrateSummary(settings.index.backend, target.index.backend)
    if settings.index.backend == target.index.backend and (
        settings.index.backend == "faiss" or settings.index.milvus_uri == target.index.milvus_uri
    ):
        raise ValueError(f"the index already lives in {target.index.backend}; nothing to migrate")
    for done in recover_stores(settings) + recover_stores(target):
        log.warning("indexes: %s", done)
    try:
        source = open_stores(settings, encoder.fingerprint, encoder.dim, read_only=True)
    except IndexFileError as exc:  # another model built it: its vectors are of no use
        summary.reason = exc.message
    else:
        with closing(source):
            lossy = [
                s for s in SPACES if (st := source.spaces[s]) is not None and st.manifest.lossy
            ]
            if lossy:
                summary.reason = f"{', '.join(lossy)} hold compressed (PQ) vectors"
            else:
                _copy(source, engine, encoder, target, summary)
                return summary
    summary.reencoded = True
    rebuilt = rebuild_indexes(target, engine, encoder)
    summary.copied = {str(space): n for space, n in rebuilt.added.items()}
    return summary


def _copy(
    source: StoreSet, engine: Engine, encoder: Encoder, target: Settings, summary: MigrateSummary
) -> None:
    with closing(open_stores(target, encoder.fingerprint, encoder.dim, load=False)) as live:
        sizes = [store.count for store in source.spaces.values() if store is not None]
        staging = live.start_rebuild(expected=max(sizes, default=0))
        for space in SPACES:
            store = source.spaces[space]
            if store is None:
                continue
            ids = np.sort(store.ids())
            for start in range(0, len(ids), COPY_BATCH):
                chunk = ids[start : start + COPY_BATCH]
                staging.get(space).add(chunk, store.vectors(chunk), item_fields(engine, chunk))
            staging.grow_if_needed(space)
            summary.copied[str(space)] = len(ids)
        live.finish_rebuild(staging)
