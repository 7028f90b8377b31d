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

from encoder.stage_times import StageTimes
from indexer.pipeline.batch import EncodedItems, EncodedRow, batch_of, rows_of
from indexer.pipeline.local import EncodeStage, encode_rows
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
    """The batch's rows as Ray Data's columns: id, bits, error, fields, a vector per space
    (zeros where the item has none: ``bits`` says which are real)."""
    rows = rows_of(batch)
    columns: dict[str, np.ndarray] = {
        "id": np.asarray([r.item_id for r in rows], np.int64),
        "bits": np.asarray([r.bits for r in rows], np.int64),
        "error": np.asarray([r.error or "" for r in rows], object),
        "source_id": np.asarray([r.source_id for r in rows], np.int64),
        "published_ts": np.asarray([r.published_ts for r in rows], np.int64),
    }
    for space in SPACES:
        matrix = np.zeros((len(rows), dim), np.float32)
        for i, row in enumerate(rows):
            if space in row.vectors:
                matrix[i] = row.vectors[space]
        columns[space.value] = matrix
    return columns


def from_columns(columns: dict[str, np.ndarray]) -> EncodedItems:
    return batch_of(
        EncodedRow(
            int(item_id),
            int(columns["bits"][i]),
            str(columns["error"][i]) or None,
            int(columns["source_id"][i]),
            int(columns["published_ts"][i]),
            {space: columns[space.value][i] for space in SPACES},
        )
        for i, item_id in enumerate(columns["id"].tolist())
    )


def ray_stage(settings: Settings, engine: Engine, options: RayOptions) -> EncodeStage:
    """The encode stage on Ray, for the runner (stage seconds stay on the actors)."""

    def stage(statuses: tuple[ItemStatus, ...], timings: StageTimes) -> Iterator[EncodedItems]:
        return ray_encoded_batches(settings, engine, statuses, options)

    return stage


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
