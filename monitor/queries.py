"""Saved semantic queries: a search kept as a monitor ("posts like this picture").

The query's embedding is stored with the model fingerprint it was made with; when the
model changes it is embedded again from its text and image. Scoring asks each new item's
vector in the query's space whether it is within ``threshold`` cosine of the query.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from encoder import Encoder
from indexer.image_store import inspect_image, write_image
from indexer.index import SPACES
from indexer.search import query_vector
from monitor.models import Rule, RuleKind, SavedQuery, SeriesKind
from simmim.db import session_factory, session_scope
from simmim.errors import NotFound, SimmimError
from simmim.paths import DataLayout
from simmim.settings import Settings


class QueryError(SimmimError):
    """A saved query cannot be created or used as asked."""


@dataclass(frozen=True)
class QueryVector:
    id: int
    name: str
    space: str
    threshold: float
    vector: np.ndarray


def save_query(
    settings: Settings,
    engine: Engine,
    encoder: Encoder,
    *,
    name: str,
    text: str | None = None,
    image: Path | bytes | None = None,
    space: str = "fused",
    threshold: float = 0.3,
    with_rule: bool = True,
) -> SavedQuery:
    """Store the query and (by default) a volume-spike rule watching its matches."""
    if space not in SPACES:
        raise QueryError(f"unknown space {space!r}", hint=f"choose one of {', '.join(SPACES)}")
    if not -1.0 <= threshold <= 1.0:
        raise QueryError(f"threshold {threshold} is not a cosine", hint="use a value in [-1, 1]")
    image_sha = None
    if image is not None:
        if isinstance(image, Path):
            if not image.is_file():
                raise QueryError(f"query image {image} does not exist", hint="pass an image file")
            image = image.read_bytes()
        data = image
        stored = inspect_image(
            data,
            max_pixels=settings.max_image_pixels,
            formats=settings.image_formats,
            thumbnail_size=settings.thumbnail_size,
        )
        image_sha = stored.sha256
        write_image(
            DataLayout(settings.data_dir),
            data,
            image_sha,
            thumbnail=stored.thumbnail,
            thumbnail_size=settings.thumbnail_size,
        )
    vector = query_vector(encoder, text, image).astype(np.float32)
    factory = session_factory(engine)
    with session_scope(factory) as session:
        if session.scalar(select(SavedQuery.id).where(SavedQuery.name == name)) is not None:
            raise QueryError(
                f"a saved query named {name!r} exists", hint="pick another name or remove it"
            )
        query = SavedQuery(
            name=name,
            text=text,
            image_sha256=image_sha,
            space=space,
            threshold=threshold,
            vector=vector.tobytes(),
            fingerprint=encoder.fingerprint,
        )
        session.add(query)
        session.flush()
        if with_rule:
            session.add(
                Rule(
                    name=f"query {name}: volume spike",
                    kind=RuleKind.VOLUME_SPIKE,
                    series_kind=SeriesKind.QUERY,
                    series_key=str(query.id),
                    min_volume=3,
                )
            )
        session.flush()
        session.expunge(query)
        return query


def remove_query(engine: Engine, name_or_id: str) -> str:
    with session_scope(session_factory(engine)) as session:
        query = _find(session, name_or_id)
        session.delete(query)
        for rule in session.scalars(
            select(Rule).where(
                Rule.series_kind == SeriesKind.QUERY, Rule.series_key == str(query.id)
            )
        ):
            session.delete(rule)
        return query.name


def _find(session: Session, name_or_id: str) -> SavedQuery:
    clause = (
        SavedQuery.id == int(name_or_id) if name_or_id.isdigit() else SavedQuery.name == name_or_id
    )
    query = session.scalars(select(SavedQuery).where(clause)).first()
    if query is None:
        raise NotFound(f"no saved query {name_or_id!r}", hint="see `simmim queries list`")
    return query


def active_query_vectors(
    settings: Settings, engine: Engine, encoder: Encoder | None
) -> list[QueryVector]:
    """Enabled queries with vectors for the current model (re-embedded when it changed)."""
    layout = DataLayout(settings.data_dir)
    out = []
    with session_scope(session_factory(engine)) as session:
        for query in session.scalars(select(SavedQuery).where(SavedQuery.enabled)):
            if encoder is not None and query.fingerprint != encoder.fingerprint:
                image = layout.image_path(query.image_sha256) if query.image_sha256 else None
                fresh = query_vector(encoder, query.text, image).astype(np.float32)
                query.vector, query.fingerprint = fresh.tobytes(), encoder.fingerprint
            out.append(
                QueryVector(
                    query.id,
                    query.name,
                    query.space,
                    query.threshold,
                    np.frombuffer(query.vector, np.float32).copy(),
                )
            )
    return out


def list_queries(engine: Engine) -> list[SavedQuery]:
    with session_scope(session_factory(engine)) as session:
        rows = list(session.scalars(select(SavedQuery).order_by(SavedQuery.id)))
        session.expunge_all()
        return rows
