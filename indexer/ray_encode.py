"""Bulk encoding on Ray Data: decode + encode on a pool of actors, vectors back to the writer.

For a rebuild or a large backlog on a cluster (one GPU per actor) or many CPU cores: the
driver splits the items into id ranges, each actor loads the model once and, per range,
reads its items from the database, decodes the images from the shared data directory and
encodes them; the driver receives the vectors and writes them through the normal writer
(save the indexes, then mark the items). The vectors are the in-process path's.

Needs the ``distributed`` extra (``pip install 'simmim[distributed]'``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, or_, select

from indexer.ingest import EncodedItems, encode_rows, mark_for
from simmim.db import make_engine, session_factory, session_scope
from simmim.errors import SimmimError
from simmim.models import SPACES, Item, ItemStatus
from simmim.paths import DataLayout
from simmim.settings import Settings

log = logging.getLogger(__name__)
CPUS_PER_CPU_ACTOR = 0.5  # leaves the reading task a core (two 1-CPU actors on 2 cores hang)


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local Ray (ray://host:10001 or host:6379 joins)
    actors: int | None = None  # None: one per GPU, else one per two CPUs
    batch: int = 256  # items per id range (one actor call)


class RayUnavailable(SimmimError):
    pass


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable(
            "Ray is not installed",
            hint="pip install 'simmim[distributed]' (or run without --ray)",
        ) from None
    return ray


def id_ranges(
    engine: Engine, statuses: tuple[ItemStatus, ...], batch: int
) -> list[tuple[int, int]]:
    """[first id, last id] of each run of ``batch`` items in these states, in id order."""
    with session_scope(session_factory(engine)) as session:
        ids = list(
            session.scalars(select(Item.id).where(Item.status.in_(statuses)).order_by(Item.id))
        )
    return [(ids[i], ids[min(i + batch, len(ids)) - 1]) for i in range(0, len(ids), batch)]


class EncodeActor:
    """One per worker slot: the model loads once, then each call encodes one id range."""

    def __init__(self, settings: dict[str, Any], statuses: list[str]) -> None:
        from encoder import load_encoder

        self.settings = Settings(**settings)
        self.statuses = tuple(ItemStatus(s) for s in statuses)
        self.engine = make_engine(self.settings.database_url)
        self.layout = DataLayout(self.settings.data_dir)
        self.encoder = load_encoder(self.settings)

    def __call__(self, ranges: dict[str, np.ndarray]) -> dict[str, np.ndarray]:

        within = or_(
            *(
                Item.id.between(int(first), int(last))
                for first, last in zip(ranges["first"], ranges["last"], strict=True)
            )
        )
        with session_scope(session_factory(self.engine)) as session:
            rows = list(
                session.scalars(
                    select(Item).where(within, Item.status.in_(self.statuses)).order_by(Item.id)
                )
            )
        return to_columns(encode_rows(self.encoder, self.layout, rows), self.encoder.dim)


def to_columns(batch: EncodedItems, dim: int) -> dict[str, np.ndarray]:
    """One row per item (Ray Data's batch format): id, marks, fields, a vector per space
    (zeros where the item has none: ``bits`` says which are real)."""
    ids = [int(mark["id"]) for mark in batch.marks]  # type: ignore[call-overload]
    row_of = {item_id: row for row, item_id in enumerate(ids)}
    columns: dict[str, np.ndarray] = {
        "id": np.asarray(ids, np.int64),
        "bits": np.asarray([mark["indexed_spaces"] for mark in batch.marks], np.int64),
        "error": np.asarray([str(mark.get("error") or "") for mark in batch.marks], object),
        "source_id": np.asarray([batch.fields[i][0] for i in ids], np.int64),
        "published_ts": np.asarray([batch.fields[i][1] for i in ids], np.int64),
    }
    for space in SPACES:
        matrix = np.zeros((len(ids), dim), np.float32)
        for item_id, vector in zip(batch.ids[space], batch.vectors[space], strict=True):
            matrix[row_of[item_id]] = vector
        columns[space.value] = matrix
    return columns


def from_columns(columns: dict[str, np.ndarray]) -> EncodedItems:

    out = EncodedItems()
    for row, item_id in enumerate(columns["id"].tolist()):
        bits = int(columns["bits"][row])
        error = str(columns["error"][row]) or None
        for space in SPACES:
            if bits & space.bit:
                out.ids[space].append(item_id)
                out.vectors[space].append(np.asarray(columns[space.value][row], np.float32))
        out.marks.append(mark_for(item_id, bits, error))
        out.unreadable_images += error is not None
        out.fields[item_id] = (int(columns["source_id"][row]), int(columns["published_ts"][row]))
    return out


def ray_encoded_batches(
    settings: Settings,
    engine: Engine,
    statuses: tuple[ItemStatus, ...],
    options: RayOptions,
) -> Iterator[EncodedItems]:
    """The items in ``statuses``, encoded on Ray, as batches for the index writer."""
    ray = _ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ranges = id_ranges(engine, statuses, options.batch)
    if not ranges:
        return
    started_here = not ray.is_initialized()
    if started_here:
        init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if options.address:
            init["address"] = options.address
        else:  # a private local Ray on this machine only
            init["_node_ip_address"] = "127.0.0.1"
        ray.init(**init)
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = float(ray.cluster_resources().get("CPU", 1))
        actors = options.actors or (gpus if gpus else max(1, int(cpus // 2)))
        per_actor = {"num_gpus": 1} if gpus else {"num_cpus": CPUS_PER_CPU_ACTOR}
        log.info("ray: %d range(s) on %d actor(s) %s", len(ranges), actors, per_actor)
        dataset = ray.data.from_items(
            [{"first": first, "last": last} for first, last in ranges]
        ).map_batches(
            EncodeActor,
            fn_constructor_kwargs={
                "settings": settings.model_dump(),
                "statuses": [s.value for s in statuses],
            },
            batch_size=1,
            concurrency=actors,
            **per_actor,
        )
        for columns in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            yield from_columns(columns)
    finally:
        if started_here:
            ray.shutdown()
