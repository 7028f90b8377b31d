"""Which store set the settings ask for: FAISS files (default) or Milvus.

Everything outside ``indexer/index`` opens, recovers and describes stores through these
three functions, so the backend is one setting (``index.backend``) and nothing else.
"""

from __future__ import annotations

from typing import Any

from indexer.index.index_set import IndexSet, faiss_status, recover_faiss
from indexer.index.protocol import StoreSet
from simmim.paths import DataLayout
from simmim.settings import Settings


def open_stores(
    settings: Settings,
    fingerprint: str,
    dim: int,
    *,
    read_only: bool = False,
    load: bool = True,
) -> StoreSet:
    """The configured backend's three spaces for this model (errors name the setting)."""
    if settings.index.backend == "milvus":
        from indexer.index.milvus_store import MilvusStores

        return MilvusStores(settings, fingerprint, dim, read_only=read_only, load=load)
    return IndexSet(settings, fingerprint, dim, read_only=read_only, load=load)


def shared_writes(settings: Settings) -> bool:
    """Whether processes on many machines may add to the stores at once: a Milvus server
    or cluster does; FAISS files and a Milvus Lite file have one writer process."""
    if settings.index.backend == "milvus":
        from indexer.index.milvus_store import is_lite, resolve_uri

        return not is_lite(resolve_uri(settings.index, settings.data_dir))
    return False


def recover_stores(settings: Settings) -> list[str]:
    """Finish or undo what an interrupted rebuild left (run under the index lock)."""
    if settings.index.backend == "milvus":
        from indexer.index.milvus_store import MilvusStores

        stores = MilvusStores(settings, "", 0, load=False)
        try:
            done = stores.recover()
        finally:
            stores.close()
        return [done] if done else []
    return recover_faiss(settings)


def stores_stamp(settings: Settings) -> str:
    """Changes whenever a reader should reopen the stores (a save, a rebuild's swap)."""
    if settings.index.backend == "milvus":
        return ",".join(
            f"{name}:{m.get('collection')}:{m.get('fingerprint')}"
            for name, m in sorted(stores_status(settings).items())
        )
    folder = DataLayout(settings.data_dir).indexes
    return ",".join(
        f"{p.name}:{p.stat().st_mtime_ns}" for p in sorted(folder.glob("*.json")) if p.is_file()
    )


def stores_status(settings: Settings, *, verify: bool = False) -> dict[str, dict[str, Any]]:
    """Each built space's manifest as plain data (for `index status`, dashboard, demo)."""
    if settings.index.backend == "milvus":
        from indexer.index.milvus_store import MilvusStores

        stores = MilvusStores(settings, "", 0, load=False, read_only=True)
        try:
            return stores.status()
        finally:
            stores.close()
    return faiss_status(settings, verify=verify)
