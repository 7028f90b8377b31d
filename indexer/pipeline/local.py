"""The local encode stage: this process's encoder over the reader's batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy import Engine

from encoder import Encoder, ItemInput
from encoder.stage_times import StageTimes
from indexer.index.protocol import timestamp
from indexer.pipeline.batch import EncodedItems
from indexer.pipeline.reader import item_batches
from simmim.models import Item, ItemStatus, item_text
from simmim.paths import DataLayout
from simmim.settings import Settings

# What the runner is handed: the items in these states, encoded, as batches for the writer
# (stage seconds into the timings where the stage can see them).
EncodeStage = Callable[[tuple[ItemStatus, ...], StageTimes], Iterator[EncodedItems]]


def local_stage(settings: Settings, engine: Engine, encoder: Encoder, *, batch: int) -> EncodeStage:
    layout = DataLayout(settings.data_dir)

    def stage(statuses: tuple[ItemStatus, ...], timings: StageTimes) -> Iterator[EncodedItems]:
        for rows in item_batches(engine, batch, statuses):
            yield encode_rows(encoder, layout, rows, timings)

    return stage


def encode_rows(
    encoder: Encoder, layout: DataLayout, rows: list[Item], timings: StageTimes | None = None
) -> EncodedItems:
    inputs = [
        ItemInput(
            text=item_text(row.title, row.text),
            image=layout.image_path(row.image_sha256) if row.image_sha256 else None,
            thumbnail=(
                layout.thumbnail_path(row.image_sha256, encoder.thumbnail_size)
                if row.image_sha256 and encoder.thumbnail_size
                else None
            ),
            key=row.id,
        )
        for row in rows
    ]
    out = EncodedItems(
        fields={row.id: (row.source_id, timestamp(row.published_at)) for row in rows}
    )
    for encoded in encoder.encode_items(inputs, timings=timings):
        out.take(encoded)
    return out
