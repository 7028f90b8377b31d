"""The FAISS store set: three spaces' index files for one model fingerprint, and building
one index from vectors."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from indexer.index.chooser import IndexPlan, choose_index
from indexer.index.folder import (
    readable_folder,
    recover,
    require_folder,
    start_staging,
    swap_in,
)
from indexer.index.manifest import VectorRows, as_rows
from indexer.index.store import CODE_TRAINING_POINTS, VectorIndex, built_manifests
from simmim.files import sweep_temp_files
from simmim.models import SPACES, Space
from simmim.paths import DataLayout
from simmim.settings import Settings

log = logging.getLogger(__name__)
TUNING_QUERIES = 500
TRAIN_POINTS_PER_LIST = 40
ADD_CHUNK = 100_000  # vectors read, encoded and added at a time


class IndexSet:
    """The three spaces' FAISS indexes for one model fingerprint (a ``StoreSet``)."""

    backend = "faiss"

    def __init__(
        self,
        settings: Settings,
        fingerprint: str,
        dim: int,
        *,
        read_only: bool = False,
        load: bool = True,
        folder: Path | None = None,
    ) -> None:
        live = DataLayout(settings.data_dir).indexes
        require_folder(live)
        self.settings = settings
        self.live = live
        # A reader in the instant of a rebuild's swap still finds a complete set.
        self.folder = folder or (readable_folder(live) if read_only else live)
        self.config = settings.index
        self.fingerprint = fingerprint
        self.dim = dim
        self.expected = 0  # a rebuild's size: a compressed plan stages at float16 on disk
        self.spaces: dict[Space, VectorIndex | None] = {
            space: VectorIndex.load(self.folder, space, fingerprint, read_only=read_only, dim=dim)
            if load
            else None
            for space in SPACES
        }

    def plan(self, count: int) -> IndexPlan:
        return choose_index(
            count, self.dim, self.config.memory_budget_mb << 20, self.config.recall_target
        )

    def get(self, space: Space) -> VectorIndex:
        index = self.spaces[space]
        if index is None:
            # A rebuild that will need a compressed index gets it now, untrained: its
            # vectors wait in the float16 file (not in an exact index in RAM, which at
            # 10M × 512-d would need 20 GB) until growth trains and fills it.
            plan = self.plan(self.expected)
            if not VectorIndex.stages_untrained(plan):
                plan = self.plan(0)
            index = VectorIndex.create(
                space,
                plan,
                self.dim,
                self.fingerprint,
                self.config.recall_target,
                folder=self.folder,
            )
            self.spaces[space] = index
        return index

    def save(self, spaces: Iterable[Space] = SPACES) -> None:
        for space in spaces:
            index = self.spaces[space]
            if index is not None:
                index.save(self.folder)

    def grow_if_needed(self, space: Space) -> bool:
        """Rebuild a space whose index type is not what its size calls for now: it outgrew
        it (e.g. Flat → IVF), or the chooser changed (8-bit PQ → 4-bit fast-scan)."""
        index = self.spaces[space]
        if index is None:
            return False
        if not index.count:
            if not index.trained and index.originals is not None:
                index.originals.discard()  # a staged space that got no vectors
                self.spaces[space] = None
            return False
        plan = self.plan(index.count)
        if plan.factory == index.manifest.factory and index.trained:
            return False
        log.info(
            "%s: %d vectors in %s, which this size no longer calls for; rebuilding as %s",
            space,
            index.count,
            index.manifest.factory,
            plan.factory,
        )
        # Read from the index being outgrown (its float16 store for a compressed one) a
        # chunk at a time: never the whole set at float32 in RAM.
        self.spaces[space] = build_index(
            space,
            plan,
            np.sort(index.ids()),
            index,
            self.fingerprint,
            self.config.recall_target,
            folder=self.folder,
        )
        if index.originals is not None:
            index.originals.discard()  # a staged space's temp file: its rows are copied
        return True

    # ---- rebuild beside, then swap (see indexer.index.folder)

    def start_rebuild(self, expected: int = 0) -> IndexSet:
        staging = start_staging(self.live)
        rebuilt = IndexSet(self.settings, self.fingerprint, self.dim, load=False, folder=staging)
        rebuilt.expected = expected
        return rebuilt

    def finish_rebuild(self, staging: IndexSet) -> None:
        staging.save()
        swap_in(self.live)
        self.spaces = staging.spaces
        self.folder = self.live

    def close(self) -> None:
        """Nothing held open: indexes are in memory or memory-mapped read-only."""


def recover_faiss(settings: Settings) -> list[str]:
    """Finish or undo an interrupted swap, remove temp files of interrupted saves."""
    live = DataLayout(settings.data_dir).indexes
    done = [recover(live) or ""]
    swept = sweep_temp_files(live)
    if swept:
        done.append(f"removed {swept} temp file(s) of interrupted saves")
    return [line for line in done if line]


def faiss_status(settings: Settings, *, verify: bool = False) -> dict[str, dict]:
    live = DataLayout(settings.data_dir).indexes
    require_folder(live)
    out = built_manifests(live, verify=verify)
    for name, manifest in out.items():
        manifest["location"] = str(live / f"{name}.faiss")
    return out


def build_index(
    space: str,
    plan: IndexPlan,
    ids: np.ndarray,
    vectors: np.ndarray | VectorRows,
    fingerprint: str,
    recall_target: float,
    *,
    seed: int = 0,
    folder: Path | None = None,
) -> VectorIndex:
    """Train on a sample, add everything, tune nprobe against exact search over ``vectors``
    (the originals: the recall recorded is what a user gets, compression included).

    ``vectors``: an array aligned with ``ids``, or rows read by id (the float16 store of
    the index being outgrown, an index itself): then only a chunk is in RAM at a time.
    ``folder``: where the index will be saved; a compressed index writes its float16
    vectors there from the start instead of holding them in RAM."""
    rows = as_rows(ids, vectors)
    index = VectorIndex.create(space, plan, rows.dim, fingerprint, recall_target, folder=folder)
    rng = np.random.default_rng(seed)
    # The tuning queries stay out of training and of the index until it is tuned, as a
    # user's queries are: a vector the lists and codes were fitted to finds its
    # neighbourhood more easily, and the recall recorded would flatter the index.
    # At most 1/40 of the vectors: recall at fixed settings falls as the index fills, so
    # a tuning index much smaller than the real one would flatter it too.
    held = np.zeros(len(ids), bool)
    if len(ids) >= 40 * 50:
        size = min(TUNING_QUERIES, len(ids) // 40)
        held[rng.choice(len(ids), size=size, replace=False)] = True
    kept_ids = ids[~held]
    if index.originals is not None and len(ids):
        index.originals.reserve(int(ids.max()))
    if not index.index.is_trained:
        # k-means wants ≥ 39 points per list; PQ's codebooks 256 per centroid (65,536).
        size = min(len(kept_ids), max(CODE_TRAINING_POINTS, TRAIN_POINTS_PER_LIST * plan.nlist))
        picked = np.sort(rng.choice(len(kept_ids), size=size, replace=False))  # file order
        index.train(rows.vectors(kept_ids[picked]))
    for start in range(0, len(kept_ids), ADD_CHUNK):
        chunk = kept_ids[start : start + ADD_CHUNK]
        index.add(chunk, rows.vectors(chunk))
    if held.any():
        held_vectors = rows.vectors(ids[held])
        index.tune(
            np.zeros(0, np.int64), recall_target, originals=(kept_ids, rows), held_out=held_vectors
        )
        index.add(ids[held], held_vectors)
    else:
        sample = rng.choice(len(ids), size=min(len(ids), TUNING_QUERIES), replace=False)
        index.tune(ids[sample], recall_target, originals=(ids, rows))
    return index
