"""The runner: reader → encode stage → writer, with reconcile first and growth after.

The entry point hands it its encode stage (``local_stage`` by default; the CLI's
``--ray`` hands ``ray_stage``), so the runner never imports Ray (clip-retrieval's
distributor shape). ``rebuild=True`` re-encodes everything into a new set beside the live
one and swaps it in (FAISS: a new folder; Milvus: new collections): search never finds
the indexes gone.

Order matters for agreement between database and indexes: the writer adds vectors, saves
the index files (atomic rename), and only then marks the items indexed. A crash in between
leaves items pending whose vectors are already in an index; reconcile at the start of
every run removes what the database does not vouch for and re-queues what it vouches for
but the index lacks, and adding is remove-then-add, so nothing is ever duplicated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import closing

from sqlalchemy import Engine
from tqdm import tqdm

from encoder import Encoder
from indexer.index import SPACES, open_stores, recover_stores
from indexer.pipeline.batch import EncodedItems, IngestSummary
from indexer.pipeline.local import EncodeStage, local_stage
from indexer.pipeline.reader import USABLE, count_items
from indexer.pipeline.reconcile import reconcile
from indexer.pipeline.writer import IndexWriter
from simmim.models import ItemStatus
from simmim.settings import Settings

log = logging.getLogger(__name__)


def rebuild_indexes(
    settings: Settings,
    engine: Engine,
    encoder: Encoder,
    *,
    batch: int = 512,
    progress: bool = False,
    stage: EncodeStage | None = None,
) -> IngestSummary:
    """Re-encode every usable item into a new set beside the live one, then swap it in.

    Search keeps reading the old set until the swap; a crash before it leaves the old set
    as it was (the next index run removes the half-built one), a crash after it leaves the
    new set, and the next run's reconcile settles any item marked differently."""
    # The old stores may belong to another model: never load them, only replace them.
    with closing(open_stores(settings, encoder.fingerprint, encoder.dim, load=False)) as live:
        total = count_items(engine, USABLE)
        indexes = live.start_rebuild(expected=total)
        writer = IndexWriter(engine, indexes, save_every_s=float("inf"))
        summary = IngestSummary()
        bar = tqdm(
            total=total,
            desc="rebuild",
            unit="item",
            delay=2,
            disable=not progress,
        )
        encode = stage or local_stage(settings, engine, encoder, batch=batch)
        _write_all(encode(USABLE, summary.stages), writer.add, summary, bar)
        bar.close()
        summary.rebuilt = [space for space in SPACES if indexes.grow_if_needed(space)]
        live.finish_rebuild(indexes)
        writer.mark()  # only now: until the swap the database describes the old set
    log_stages(summary)
    return summary


def run_ingest(
    settings: Settings,
    engine: Engine,
    encoder: Encoder,
    *,
    rebuild: bool = False,
    batch: int = 512,
    progress: bool = False,
    save_every_s: float = 120.0,
    stage: EncodeStage | None = None,
) -> IngestSummary:
    """Index every pending item. Work since the last save (at most ``save_every_s`` of it)
    is what a crash can cost; the next run's reconcile puts it back in the queue."""
    for done in recover_stores(settings):  # an interrupted rebuild: finished or undone first
        log.warning("indexes: %s", done)
    if rebuild:
        return rebuild_indexes(
            settings, engine, encoder, batch=batch, progress=progress, stage=stage
        )
    summary = IngestSummary()
    with closing(open_stores(settings, encoder.fingerprint, encoder.dim)) as indexes:
        summary.requeued, summary.removed = reconcile(engine, indexes)
        writer = IndexWriter(engine, indexes, save_every_s=save_every_s)
        bar = tqdm(
            total=count_items(engine), desc="index", unit="item", delay=2, disable=not progress
        )
        pending = (ItemStatus.PENDING,)
        encode = stage or local_stage(settings, engine, encoder, batch=batch)
        _write_all(encode(pending, summary.stages), writer.write, summary, bar)
        with summary.stages.timing("write"):
            writer.flush()
        bar.close()
        grown = [space for space in SPACES if indexes.grow_if_needed(space)]
        if grown:
            indexes.save()
            summary.rebuilt = grown
    log_stages(summary)
    return summary


def _write_all(
    batches: Iterable[EncodedItems],
    write: Callable[[EncodedItems, IngestSummary], None],
    summary: IngestSummary,
    bar: tqdm,  # type: ignore[type-arg]
) -> None:
    """Every encoded batch through the writer, its seconds counted as the write stage."""
    for encoded in batches:
        with summary.stages.timing("write"):
            write(encoded, summary)
        bar.update(len(encoded.marks))


def log_stages(summary: IngestSummary) -> None:
    """What ``simmim -v index`` prints of the pipeline: where the time went."""
    log.info("stages (seconds, summed over threads): %s", summary.stages.line())
