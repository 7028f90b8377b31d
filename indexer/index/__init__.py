"""Vector stores, one per space (image, text, fused), kept in step with the database.

``open_stores`` gives the configured backend's set (FAISS files by default, or Milvus);
both satisfy the ``StoreSet``/``VectorStore`` protocols in :mod:`indexer.index.protocol`.
Search, scoring and the ingest writer import from here, never from the pipeline.
"""

from __future__ import annotations

from indexer.index.backends import (
    open_stores,
    recover_stores,
    shared_writes,
    stores_stamp,
    stores_status,
)
from indexer.index.index_set import IndexSet, build_index
from indexer.index.protocol import FieldFilter, StoreSet, VectorMeta, VectorStore
from simmim.models import SPACES, Space

__all__ = [
    "SPACES",
    "FieldFilter",
    "IndexSet",
    "Space",
    "StoreSet",
    "VectorMeta",
    "VectorStore",
    "build_index",
    "open_stores",
    "recover_stores",
    "shared_writes",
    "stores_stamp",
    "stores_status",
]
