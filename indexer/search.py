"""Search: one function behind the CLI and the dashboard.

A text query is embedded by the text tower, an image query by the image tower, both
together by the fusion (as an item with that image and text). Each space holds one kind of
vector, all in the same joint space, so: text → ``image`` finds pictures, image → ``text``
finds captions, either → ``fused`` finds items by their combined content.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import ColumnElement, Engine, bindparam, func, select
from sqlalchemy.orm import Session, sessionmaker

from encoder import Encoder, ItemInput
from indexer.index import SPACES, FieldFilter, Space, StoreSet, VectorStore
from indexer.index.chooser import FLAT_MAX
from indexer.text import content_key
from simmim.db import session_factory, session_scope
from simmim.errors import NotFound, SimmimError
from simmim.images import ImageInput
from simmim.models import Item, ItemStatus, Source

COLLAPSE_COSINE = 0.94
EXACT_AMONG_MAX = FLAT_MAX  # a filter leaving this few items gets exact search among them
IS_INDEXED = Item.status == ItemStatus.INDEXED


class SearchError(SimmimError):
    """The query cannot be answered as asked (no query, unknown space, empty index)."""


@dataclass
class SearchFilters:
    """Restrictions on which items may be returned.

    ``conditions`` is the hook later parts use (topic, sentiment, saved queries): any SQL
    condition on Item, e.g. ``Item.id.in_(select(Score.item_id).where(...))``.
    """

    since: datetime | None = None
    until: datetime | None = None
    source_ids: Sequence[int] = ()
    conditions: list[ColumnElement[bool]] = field(default_factory=list)

    def fields(self) -> FieldFilter:
        """The part a store that keeps source and time beside each vector applies itself."""
        return FieldFilter(self.since, self.until, tuple(self.source_ids))

    def clauses(self) -> list[ColumnElement[bool]]:
        clauses = list(self.conditions)
        when = Item.published_at
        if self.since is not None:
            clauses.append(when >= self.since)
        if self.until is not None:
            clauses.append(when < self.until)
        if self.source_ids:
            clauses.append(Item.source_id.in_(list(self.source_ids)))
        return clauses


@dataclass
class SearchResult:
    item_id: int
    score: float
    space: str
    title: str | None
    text: str | None
    url: str | None
    image_sha256: str | None
    source_id: int
    published_at: datetime | None
    source_name: str = ""
    # Near-identical results folded into this one (collapse): their ids and the other
    # sources that carry the same item ("also in: Reuters, AP").
    duplicates: list[int] = field(default_factory=list)
    also_in: list[str] = field(default_factory=list)


# The id, then SearchResult's fields from ``title`` on, in its order: rows fill results
# positionally (cheaper than a named read per field per row on every search).
RESULT_COLUMNS = (
    Item.id,
    Item.title,
    Item.text,
    Item.url,
    Item.image_sha256,
    Item.source_id,
    Item.published_at,
    Source.name.label("source_name"),
)
# Built once: every search reads its hits with it, and building and keying a statement
# per call cost more than the read itself (SQLAlchemy caches the compiled SQL by that key).
RESULTS_BY_ID = (
    select(*RESULT_COLUMNS)
    .join(Source, Source.id == Item.source_id)
    .where(Item.id.in_(bindparam("ids", expanding=True)), IS_INDEXED)
)


def query_vector(encoder: Encoder | None, text: str | None, image: ImageInput | None) -> np.ndarray:
    if not text and image is None:
        raise SearchError("a search needs a text, an image, or both")
    if encoder is None:
        raise SearchError("text and image queries need an encoder")
    if text and image is not None:
        batch = next(encoder.encode_items([ItemInput(text=text, image=image)]))
        if batch.errors:
            raise SearchError(f"query image unreadable: {batch.errors[0]}")
        return batch.fused[0]
    if image is not None:
        vectors, errors = encoder.encode_images([image])
        if errors:
            raise SearchError(f"query image unreadable: {errors[0]}")
        return vectors[0]
    return encoder.encode_texts([text or ""])[0]


def search(
    engine: Engine,
    encoder: Encoder | None,
    indexes: StoreSet,
    *,
    text: str | None = None,
    image: ImageInput | None = None,
    vector: np.ndarray | None = None,
    space: str = "fused",
    k: int = 10,
    filters: SearchFilters | None = None,
    collapse: bool = True,
    like: int | None = None,
) -> list[SearchResult]:
    """Top-k items; with filters, still k results whenever k matching items exist.

    ``like``: more like this item (its own vector in ``space``; itself left out).

    ``vector`` skips encoding (a saved query's embedding, or a benchmark's). A filter that
    leaves few items gets exact search among them; a broader one runs inside a store that
    keeps source and time (Milvus) or widens the search until k matching items are found.
    Every filter is also checked in SQL when the results are read.
    """
    if like is not None:
        return more_like_this(
            engine, indexes, like, space=space, k=k, filters=filters, collapse=collapse
        )
    if space not in SPACES:
        raise SearchError(f"unknown space {space!r}", hint=f"choose one of {', '.join(SPACES)}")
    index = indexes.spaces.get(Space(space))
    if index is None or not index.count:
        raise SearchError(
            f"the {space} index is empty", hint="run `simmim crawl` then `simmim index`"
        )
    query = (vector if vector is not None else query_vector(encoder, text, image))[None]
    filters = filters or SearchFilters()
    clauses = filters.clauses()
    count = index.count
    where = filters.fields() if index.filters_fields else None
    widen = 1.0
    among: np.ndarray | None = None
    if clauses:
        # A filter passing a fraction s of the vectors leaves an approximate index ~s of
        # its usual candidates, and the best matches of a narrow filter lie all over the
        # space. So: few matching items (as many as exact search handles in a blink) →
        # exact search among just those; more → look 1/s further.
        factory = session_factory(engine)
        passing = _matching_count(factory, clauses)
        if passing == 0:
            return []
        if passing <= EXACT_AMONG_MAX and where is not None and not filters.conditions:
            widen = math.inf  # the store filters its own fields: probe everything, exactly
        elif passing <= EXACT_AMONG_MAX:
            among = _matching_ids(factory, clauses)
            where = None
        else:
            widen = max(1.0, count / passing)
    sql_only = bool(clauses) and where is None and among is None
    # Candidates beyond k: a filter checked only in SQL drops some (×4); folding copies
    # drops a few (×2: copies of one item share a vector, so they sit side by side and
    # their group is complete within the candidates). Fewer than k left: the loop below
    # asks for four times as many. Every candidate costs a row read and a content key.
    fetch = min(index.max_k, k * (4 if sql_only else 2 if collapse else 1) + 1)
    while True:
        scores, ids = index.search(query, fetch, where, widen=widen, among=among)
        found = [(i, s) for i, s in zip(ids[0].tolist(), scores[0].tolist(), strict=True) if i >= 0]
        # Plain columns on a connection, not ORM objects in a session: this read is on
        # every search's path, and a third of an API search's time went to the ORM.
        with engine.connect() as connection:
            rows = {
                row[0]: row[1:]
                for row in connection.execute(
                    RESULTS_BY_ID.where(*clauses) if clauses else RESULTS_BY_ID,
                    {"ids": [i for i, _ in found]},
                ).all()
            }
        results = [SearchResult(i, s, space, *rows[i]) for i, s in found if i in rows]
        if collapse:
            results = _collapse(results, index)
        # Exhausted: the store has no more to give (everything was fetched, or a search
        # that saw every vector returned fewer than asked).
        exhausted = (
            fetch >= count
            or fetch >= index.max_k
            or (len(found) < fetch and (among is not None or index.exhaustive(widen)))
        )
        if len(results) >= k or exhausted:
            return results[:k]
        fetch = min(count, index.max_k, fetch * 4)
        widen *= 4


def _matching_count(factory: sessionmaker[Session], clauses: list[ColumnElement[bool]]) -> int:
    with session_scope(factory) as session:
        return session.scalar(select(func.count(Item.id)).where(IS_INDEXED, *clauses)) or 0


def _matching_ids(factory: sessionmaker[Session], clauses: list[ColumnElement[bool]]) -> np.ndarray:
    with session_scope(factory) as session:
        ids = session.scalars(select(Item.id).where(IS_INDEXED, *clauses)).all()
    return np.asarray(ids, np.int64)


def _collapse(results: list[SearchResult], index: VectorStore) -> list[SearchResult]:
    """Fold each result into a better-ranked one with the same content (identical text
    and image, whatever the source) or a nearly identical vector (cosine ≥ 0.94); the
    group keeps its best member's rank and score and lists the others' sources."""
    if len(results) < 2:
        return results
    vectors = index.vectors(np.array([r.item_id for r in results], np.int64))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms == 0, 1, norms)
    # One matrix product for every pair, read as Python lists: a dot product per pair
    # from Python was half of a whole search's time.
    near = (vectors @ vectors.T >= COLLAPSE_COSINE).tolist()
    kept: list[int] = []
    by_content: dict[str, int] = {}
    for row, result in enumerate(results):
        key = content_key(result.title, result.text, result.image_sha256)
        leader = by_content.get(key) if key else None
        if leader is None:
            close = near[row]
            leader = next((other for other in kept if close[other]), None)
        if leader is None:
            kept.append(row)
            if key:
                by_content[key] = row
            continue
        if key:  # a later copy of this one's content joins the same group
            by_content.setdefault(key, leader)
        group = results[leader]
        group.duplicates.append(result.item_id)
        if result.source_name != group.source_name and result.source_name not in group.also_in:
            group.also_in.append(result.source_name)
    return [results[row] for row in kept]


def more_like_this(
    engine: Engine,
    indexes: StoreSet,
    item_id: int,
    *,
    space: str = "fused",
    k: int = 10,
    filters: SearchFilters | None = None,
    collapse: bool = True,
) -> list[SearchResult]:
    """Items nearest to one indexed item's own vector in ``space`` (itself left out)."""
    if space not in SPACES:
        raise SearchError(f"unknown space {space!r}", hint=f"choose one of {', '.join(SPACES)}")
    with session_scope(session_factory(engine)) as session:
        bits = session.scalar(select(Item.indexed_spaces).where(Item.id == item_id))
    if bits is None:
        raise NotFound(f"no item with id {item_id}")
    index = indexes.spaces.get(Space(space))
    if not bits & Space(space).bit or index is None:
        raise SearchError(
            f"item {item_id} has no {space} vector",
            hint="it is not indexed yet, or has no " + ("image" if space == "image" else "text"),
        )
    vector = index.vectors(np.asarray([item_id], np.int64))[0]
    if not np.any(vector):
        raise SearchError(
            f"item {item_id} is missing from the {space} index",
            hint="run `simmim index` (it reconciles the index with the database)",
        )
    found = search(
        engine,
        None,
        indexes,
        vector=vector,
        space=space,
        k=k + 1,
        filters=filters,
        collapse=collapse,
    )
    return [result for result in found if result.item_id != item_id][:k]
