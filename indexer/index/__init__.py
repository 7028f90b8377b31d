"""Vector indexes, one per space (image, text, fused), kept in step with the database.

``IndexSet`` (the three spaces) and ``build_index`` live in :mod:`indexer.index.index_set`;
search, scoring and the ingest writer import them from here, never from the pipeline.
"""

from __future__ import annotations

from indexer.index.index_set import IndexSet, build_index
from simmim.models import SPACES, Space

__all__ = ["SPACES", "IndexSet", "Space", "build_index"]
