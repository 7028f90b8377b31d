"""The Milvus store: the same three spaces in Milvus collections, chosen by one URI.

``index.milvus_uri`` picks the deployment: a file path ending in ``.db`` runs Milvus Lite
inside this process (one process per file), ``http://host:19530`` a Milvus server or
cluster. One collection per space holds ``id`` (primary key = item id), ``vector``,
``source_id`` and ``published_ts``, so source and time filters run inside Milvus.

What FAISS keeps in JSON files beside the index lives in one small collection,
``{prefix}_meta``: a manifest per space, naming the collection that holds its vectors.
Rebuilds and growth fill a *new* collection and then repoint the manifest (the swap), so
search always finds a complete one; collections no manifest names are leftovers of an
interrupted rebuild and :meth:`MilvusStores.recover` drops them.

Every collection is created with ``consistency_level="Strong"``: a server's default
("Bounded") lets a count or reconcile right after an insert miss it. Strong reads wait
for the server's time tick (~0.3 s on a standalone server), so only what reconciles
(ids, removals) reads at Strong; search, counts and vector reads use "Session" (this
process sees its own writes at once, others' within the server's bound) or what
``index.milvus_search_consistency`` says.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from indexer.index import chooser
from indexer.index.chooser import IndexPlan
from indexer.index.lite_lock import lock_holder, quiet_lite_logs
from indexer.index.manifest import (
    IndexFileError,
    Manifest,
    as_rows,
    dimension_mismatch,
    exact_neighbour_scores,
    exact_scores_of,
    model_mismatch,
    recall_at_k,
    without_self,
)
from indexer.index.protocol import NO_TIME, FieldFilter, VectorMeta, timestamp
from simmim.errors import SimmimError
from simmim.models import SPACES, Space
from simmim.redact import mask_url
from simmim.settings import IndexSettings, Settings

log = logging.getLogger(__name__)

MAX_K = 16384  # Milvus's own limit on topk
MAX_EF = 32768  # and on HNSW's ef
MAX_NPROBE = 65536
RESULT_WINDOW = 16384  # the most rows one query returns
MAX_ID = 2**62
CHUNK = 2000  # rows per insert/get call (gRPC messages stay well under 64 MB at 4096 dims)
SEARCH_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536)
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 200
CONSISTENCY = "Strong"
SESSION = "Session"
INDEX_WAIT_S = 600.0


class MilvusSetupError(SimmimError):
    """Milvus cannot be reached or used as configured."""


def resolve_uri(config: IndexSettings, data_dir: Path) -> str:
    """The URI to connect to: a server URL, or the Milvus Lite file (default in data_dir)."""
    uri = config.milvus_uri.strip()
    if not uri:
        return str(Path(data_dir) / "milvus.db")
    if uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:")):
        return uri
    if not uri.endswith(".db"):
        raise MilvusSetupError(
            f"SIMMIM_INDEX__MILVUS_URI={mask_url(uri)!r} is neither a server URL nor a "
            "Milvus Lite file",
            hint="use http://HOST:19530 for a Milvus server, or a path ending in .db for Milvus Lite",
        )
    path = Path(uri).expanduser()
    return str(path if path.is_absolute() else Path(data_dir) / path)


def is_lite(uri: str) -> bool:
    return uri.endswith(".db") and "://" not in uri


class _Guarded:
    """The client, with every failure of a call turned into one error naming the setting
    (a server that went away mid-run, a collection dropped by hand)."""

    def __init__(self, client: Any, uri: str) -> None:
        self._client = client
        self._uri = uri

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            except SimmimError:
                raise
            except Exception as exc:  # MilvusException, grpc errors
                raise MilvusSetupError(
                    f"Milvus at SIMMIM_INDEX__MILVUS_URI={mask_url(self._uri)!r} failed "
                    f"in {name}: {exc}",
                    hint="check the server (and `simmim index status`); the next index run "
                    "reconciles whatever a failed write left",
                ) from exc

        return call


def connect(settings: Settings) -> tuple[Any, str]:
    """A MilvusClient for the configured URI, or one error that names the setting."""
    from pymilvus import MilvusClient

    config = settings.index
    uri = resolve_uri(config, settings.data_dir)
    if is_lite(uri):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        quiet_lite_logs()
    token = config.milvus_token.get_secret_value() if config.milvus_token else ""
    try:
        client = MilvusClient(uri=uri, token=token, timeout=config.milvus_timeout_s)
        client.list_collections()
    except Exception as exc:  # pymilvus raises MilvusException, grpc errors, lite lock errors
        holder = lock_holder(uri) if is_lite(uri) else None
        if holder is not None:
            raise MilvusSetupError(
                f"Milvus Lite's file {uri} is open in {holder}: Milvus Lite opens a file "
                "in one process at a time",
                hint="stop that process (or close the dashboard) and run this again, or run "
                "a Milvus server for several processes (SIMMIM_INDEX__MILVUS_URI=http://…)",
            ) from exc
        locked = "lock" in str(exc).lower()
        raise MilvusSetupError(
            f"cannot use Milvus at SIMMIM_INDEX__MILVUS_URI={mask_url(uri)!r}: "
            f"{str(exc) or type(exc).__name__}",
            hint=(
                "Milvus Lite opens its file in one process at a time: stop the other "
                "simmim process, or run a Milvus server for several"
                if locked
                else "check that the server is running and the URI/token are right "
                "(or set SIMMIM_INDEX__BACKEND=faiss)"
            ),
        ) from exc
    return _Guarded(client, uri), uri


def release_lite(settings: Settings) -> None:
    """Stop this process's Milvus Lite server for the configured file, so that another
    process (the dashboard after the demo) can open it. Nothing to do for a server."""
    uri = resolve_uri(settings.index, settings.data_dir)
    if is_lite(uri):
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


def choose_milvus_index(count: int, recall_target: float) -> IndexPlan:
    """FLAT while exact search is cheap, then IVF_FLAT; HNSW for recall targets above 0.99.

    The same size thresholds as the FAISS chooser; Milvus deletes from HNSW too, so it is
    offered here for the highest targets (IVF needs many lists probed to get there)."""
    flat_max = chooser.FLAT_MAX_HIGH_RECALL if recall_target > 0.99 else chooser.FLAT_MAX
    if count <= flat_max:
        return IndexPlan("FLAT", "flat")
    if recall_target > 0.99:
        return IndexPlan(f"HNSW,M{HNSW_M}", "hnsw")
    nlist = chooser.ivf_lists(count)
    return IndexPlan(f"IVF_FLAT,nlist{nlist}", "ivf", nlist)


def _index_params(client: Any, plan: IndexPlan) -> Any:
    params = client.prepare_index_params()
    if plan.kind == "flat":
        params.add_index("vector", index_type="FLAT", metric_type="IP")
    elif plan.kind == "hnsw":
        params.add_index(
            "vector",
            index_type="HNSW",
            metric_type="IP",
            params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION},
        )
    else:
        params.add_index(
            "vector", index_type="IVF_FLAT", metric_type="IP", params={"nlist": plan.nlist}
        )
    return params


def _filter_expression(where: FieldFilter | None) -> str:
    if not where:
        return ""
    parts = []
    if where.source_ids:
        parts.append(f"source_id in [{', '.join(str(int(s)) for s in where.source_ids)}]")
    if where.since is not None:
        parts.append(f"published_ts >= {timestamp(where.since)}")
    if where.until is not None:
        parts.append(f"published_ts < {timestamp(where.until)} and published_ts > {NO_TIME}")
    return " and ".join(parts)


def ensure_loaded(client: Any, name: str) -> None:
    """Load a collection into memory if it is not (Milvus Lite reopens files released)."""
    state = client.get_load_state(name).get("state")
    if "NotLoad" in str(state):
        client.load_collection(name)


class MilvusStore:
    """One space's vectors in one Milvus collection."""

    filters_fields = True
    max_k = MAX_K

    def __init__(
        self, client: Any, manifest: Manifest, *, flush_on_save: bool, reads: str = SESSION
    ) -> None:
        self.client = client
        self.manifest = manifest
        self.flush_on_save = flush_on_save
        self.reads = reads  # consistency of search, count and vector reads
        self._deleted = False

    @property
    def name(self) -> str:
        return self.manifest.collection

    # ---- contents

    @property
    def count(self) -> int:
        # pymilvus's session does not cover deletes: after one, read at Strong once
        consistency = CONSISTENCY if self._deleted else self.reads
        self._deleted = False
        return self._count(consistency)

    def _count(self, consistency: str) -> int:
        rows = self.client.query(
            self.name, filter="", output_fields=["count(*)"], consistency_level=consistency
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def add(self, ids: np.ndarray, vectors: np.ndarray, meta: VectorMeta | None = None) -> None:
        """Upsert: the primary key is the item id, so a re-add replaces, never duplicates."""
        if not len(ids):
            return
        meta = meta or VectorMeta.empty(len(ids))
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for start in range(0, len(ids), CHUNK):
            stop = start + CHUNK
            rows = [
                {"id": int(i), "vector": v, "source_id": int(s), "published_ts": int(t)}
                for i, v, s, t in zip(
                    ids[start:stop],
                    vectors[start:stop],
                    meta.source_ids[start:stop],
                    meta.published_ts[start:stop],
                    strict=True,
                )
            ]
            self.client.upsert(self.name, rows)

    def remove(self, ids: np.ndarray) -> int:
        removed = 0
        for start in range(0, len(ids), CHUNK):
            chunk = [int(i) for i in ids[start : start + CHUNK]]
            present = self.client.query(
                self.name,
                filter=f"id in {chunk}",
                output_fields=["id"],
                limit=len(chunk),
                consistency_level=CONSISTENCY,
            )
            if present:
                self.client.delete(self.name, ids=[row["id"] for row in present])
                removed += len(present)
                self._deleted = True
        return removed

    def rows(self, fields: list[str]) -> Iterator[list[dict[str, Any]]]:
        """Every stored row, in batches of id ranges (ids are item ids: dense, positive).

        Not pymilvus's query iterator: it asks for a session timestamp that neither Milvus
        Lite nor 2.3 servers give, and logs an error each time. Ranges widen while they come
        back thin and narrow when one hits Milvus's result window."""
        remaining = self._count(CONSISTENCY)  # what reconcile lists must include every write
        low, width = 0, CHUNK
        while remaining > 0 and low < MAX_ID:
            high = min(low + width, MAX_ID)
            rows = self.client.query(
                self.name,
                filter=f"id >= {low} and id < {high}",
                output_fields=fields,
                limit=RESULT_WINDOW,
                consistency_level=CONSISTENCY,
            )
            if len(rows) >= RESULT_WINDOW and width > 1:
                width //= 2  # too many in this range: look at less of it
                continue
            if rows:
                yield rows
            remaining -= len(rows)
            low = high
            if len(rows) < RESULT_WINDOW // 4:  # few Strong reads: each waits for a time tick
                width *= 2

    def ids(self) -> np.ndarray:
        parts = [np.fromiter((r["id"] for r in rows), np.int64) for rows in self.rows(["id"])]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        out = np.zeros((len(ids), self.manifest.dim), np.float32)
        position = {int(i): n for n, i in enumerate(ids)}
        for start in range(0, len(ids), CHUNK):
            chunk = [int(i) for i in ids[start : start + CHUNK]]
            rows = self.client.get(
                self.name, ids=chunk, output_fields=["vector"], consistency_level=self.reads
            )
            for row in rows:
                out[position[int(row["id"])]] = row["vector"]
        return out

    def contents(self) -> tuple[np.ndarray, np.ndarray, VectorMeta]:
        """Everything stored (ids, vectors, fields): what a copy to a new collection reads."""
        ids: list[int] = []
        vectors: list[list[float]] = []
        sources: list[int] = []
        times: list[int] = []
        for rows in self.rows(["id", "vector", "source_id", "published_ts"]):
            ids.extend(r["id"] for r in rows)
            vectors.extend(r["vector"] for r in rows)
            sources.extend(r["source_id"] for r in rows)
            times.extend(r["published_ts"] for r in rows)
        matrix = np.asarray(vectors, np.float32).reshape(len(ids), self.manifest.dim)
        meta = VectorMeta(np.asarray(sources, np.int64), np.asarray(times, np.int64))
        return np.asarray(ids, np.int64), matrix, meta

    # ---- search

    def search_params(self, k: int, widen: float = 1.0) -> dict[str, Any]:
        scaled = max(1, self.manifest.nprobe) * widen  # may be inf: "every list"
        if self.manifest.kind == "ivf":  # Milvus takes min(nprobe, nlist) itself
            return {"metric_type": "IP", "params": {"nprobe": math.ceil(min(scaled, MAX_NPROBE))}}
        if self.manifest.kind == "hnsw":
            ef = math.ceil(min(scaled, MAX_EF))
            return {"metric_type": "IP", "params": {"ef": max(k, ef)}}
        return {"metric_type": "IP", "params": {}}

    @cached_property
    def lists(self) -> int:
        """IVF lists the engine really built: the server reports them; Milvus Lite picks its
        own (it ignores the nlist asked for), so it counts as "as many as may be"."""
        try:
            described = self.client.describe_index(self.name, "vector")
        except Exception:  # an engine without describe_index
            described = {}
        value = described.get("nlist") or (described.get("params") or {}).get("nlist")
        return int(value) if value else MAX_NPROBE

    def exhaustive(self, widen: float = 1.0) -> bool:
        step = max(1, self.manifest.nprobe) * widen
        if self.manifest.kind == "ivf":
            return step >= self.lists
        if self.manifest.kind == "hnsw":
            return step >= MAX_EF
        return True

    def search(
        self,
        queries: np.ndarray,
        k: int,
        where: FieldFilter | None = None,
        *,
        widen: float = 1.0,
        among: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, MAX_K))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        expression = _filter_expression(where)
        if among is not None:  # exact among these ids: every list probed
            listed = f"id in [{', '.join(str(int(i)) for i in among)}]"
            expression = f"({expression}) and {listed}" if expression else listed
            widen = math.inf
        hits = self.client.search(
            self.name,
            data=list(queries),
            limit=k,
            filter=expression,
            search_params=self.search_params(k, widen),
            output_fields=["id"],  # nothing else: Milvus Lite returns the vector otherwise
            consistency_level=self.reads,
        )
        scores = np.full((len(queries), k), -np.inf, np.float32)
        found = np.full((len(queries), k), -1, np.int64)
        for row, results in enumerate(hits):
            for col, hit in enumerate(results[:k]):
                scores[row, col] = hit["distance"]
                found[row, col] = hit["id"]
        return scores, found

    def wait_for_index(self, timeout_s: float = INDEX_WAIT_S) -> None:
        """Flush and wait until the server has indexed every row (for tuning)."""
        self.client.flush(self.name)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.client.describe_index(self.name, "vector")
            if int(state.get("pending_index_rows", 0)) == 0 and int(
                state.get("indexed_rows", 0)
            ) >= int(state.get("total_rows", 0)):
                return
            time.sleep(0.5)
        log.warning("%s: index still building after %.0f s; tuning anyway", self.name, timeout_s)

    def tune(self, ids: np.ndarray, vectors: np.ndarray, query_rows: np.ndarray) -> None:
        """Smallest nprobe (IVF) or ef (HNSW) whose tie-aware recall@10 against exact search
        over the stored vectors meets the target; each query's own entry is left out."""
        manifest = self.manifest
        if manifest.kind == "flat" or len(ids) < 2:
            manifest.nprobe, manifest.recall_at_10 = 0, 1.0
            manifest.recall_basis = "exact index"
            return
        manifest.recall_basis = "original vectors"  # Milvus keeps full float32 vectors
        self.wait_for_index()
        k = min(10, len(ids) - 1)
        queries, query_ids = vectors[query_rows], ids[query_rows]
        rows = as_rows(ids, vectors)  # once: not an id sort per step of the sweep
        exact_scores = exact_neighbour_scores(ids, rows, query_ids, queries, k)
        # Not capped at the nlist asked for: an engine may build its own (Milvus Lite
        # does), and Milvus takes min(nprobe, lists) itself; no index has more lists than
        # vectors.
        recall = 0.0
        for step in (s for s in SEARCH_STEPS if manifest.kind == "hnsw" or s <= len(ids)):
            manifest.nprobe = step
            _, found = self.search(queries, k + 1)
            scores = exact_scores_of(queries, found, ids, rows)
            recall = recall_at_k(exact_scores, without_self(scores, found, query_ids, k), k)
            if recall >= manifest.recall_target:
                break
        manifest.recall_at_10 = round(recall, 4)
        log.info("%s: search step %d gives recall@%d %.3f", self.name, manifest.nprobe, k, recall)


class MilvusStores:
    """The three spaces in Milvus for one model fingerprint (see the module docstring)."""

    backend = "milvus"

    def __init__(
        self,
        settings: Settings,
        fingerprint: str,
        dim: int,
        *,
        read_only: bool = False,
        load: bool = True,
        staging: bool = False,
    ) -> None:
        self.settings = settings
        self.config = settings.index
        self.fingerprint = fingerprint
        self.dim = dim
        self.read_only = read_only
        self.staging = staging  # a rebuild's set: manifests are published by finish_rebuild
        self.client, self.uri = connect(settings)
        self.prefix = self.config.milvus_prefix
        self.meta_name = f"{self.prefix}_meta"
        self.flush_on_save = is_lite(self.uri)  # a server's inserts are durable on ack (WAL)
        self.spaces: dict[Space, MilvusStore | None] = dict.fromkeys(SPACES)
        if load:
            for space, manifest in self.manifests().items():
                self.spaces[space] = self._open(space, manifest)

    # ---- manifests (the meta collection)

    def _ensure_meta(self) -> None:
        if self.client.has_collection(self.meta_name):
            return
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False)
        schema.add_field("space", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("manifest", DataType.VARCHAR, max_length=8192)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants one vector field
        params = self.client.prepare_index_params()
        params.add_index("v", index_type="FLAT", metric_type="L2")
        self.client.create_collection(
            self.meta_name, schema=schema, index_params=params, consistency_level=CONSISTENCY
        )

    def manifests(self) -> dict[Space, Manifest]:
        """The published manifest of each built space."""
        if not self.client.has_collection(self.meta_name):
            return {}
        ensure_loaded(self.client, self.meta_name)
        rows = self.client.query(
            self.meta_name, filter="", output_fields=["space", "manifest"], limit=len(SPACES) + 1
        )
        out = {}
        for row in rows:
            if row["space"] in SPACES:
                try:
                    out[Space(row["space"])] = Manifest.from_dict(json.loads(row["manifest"]))
                except (json.JSONDecodeError, TypeError, AttributeError) as exc:
                    raise IndexFileError(
                        f"the Milvus manifest of the {row['space']} space is damaged: {exc}",
                        hint="run `simmim index --rebuild`",
                    ) from exc
        return out

    def _publish(self, store: MilvusStore) -> None:
        if self.read_only:
            return
        self._ensure_meta()
        text = json.dumps(asdict(store.manifest))
        self.client.upsert(
            self.meta_name, [{"space": store.manifest.space, "manifest": text, "v": [0.0, 0.0]}]
        )

    def _open(self, space: Space, manifest: Manifest) -> MilvusStore | None:
        if manifest.fingerprint != self.fingerprint:
            raise model_mismatch(space, manifest.fingerprint, self.fingerprint)
        if manifest.dim != self.dim:
            raise dimension_mismatch(space, manifest.dim, self.dim)
        if not self.client.has_collection(manifest.collection):
            log.warning(
                "%s: collection %s is gone; the next index run re-queues its items",
                space,
                manifest.collection,
            )
            return None
        ensure_loaded(self.client, manifest.collection)
        return self._store(manifest)

    def _store(self, manifest: Manifest) -> MilvusStore:
        return MilvusStore(
            self.client,
            manifest,
            flush_on_save=self.flush_on_save,
            reads=self.config.milvus_search_consistency,
        )

    def _ours(self, name: str) -> bool:
        """A space collection of this prefix (the meta collection is not one)."""
        return any(name.startswith(f"{self.prefix}_{space}_") for space in SPACES)

    # ---- collections

    def create_collection(self, space: Space, plan: IndexPlan) -> MilvusStore:
        """A new, empty collection for this space (not published: see get/_replace)."""
        from pymilvus import DataType

        name = f"{self.prefix}_{space}_{uuid.uuid4().hex[:12]}"
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("source_id", DataType.INT64)
        schema.add_field("published_ts", DataType.INT64)
        self.client.create_collection(
            name,
            schema=schema,
            index_params=_index_params(self.client, plan),
            consistency_level=CONSISTENCY,
        )
        manifest = Manifest(
            space,
            plan.factory,
            plan.kind,
            self.dim,
            self.fingerprint,
            recall_target=self.config.recall_target,
            backend="milvus",
            collection=name,
        )
        if plan.kind == "flat":
            manifest.recall_at_10, manifest.recall_basis = 1.0, "exact index"
        return self._store(manifest)

    def get(self, space: Space) -> MilvusStore:
        store = self.spaces[space]
        if store is None:
            store = self.create_collection(space, choose_milvus_index(0, self.config.recall_target))
            self.spaces[space] = store
            if not self.staging:
                self._publish(store)  # readers and reconcile find it from now on
        return store

    def save(self, spaces: Iterable[Space] = SPACES) -> None:
        for space in spaces:
            store = self.spaces[space]
            if store is None:
                continue
            if store.flush_on_save:
                self.client.flush(store.name)
            store.manifest.count = store.count
            if not self.staging:
                self._publish(store)

    def build(
        self, space: Space, ids: np.ndarray, vectors: np.ndarray, meta: VectorMeta
    ) -> MilvusStore:
        """A new collection with these vectors, its index type chosen and tuned."""
        plan = choose_milvus_index(len(ids), self.config.recall_target)
        store = self.create_collection(space, plan)
        store.add(ids, vectors, meta)
        rng = np.random.default_rng(0)
        store.tune(ids, vectors, rng.choice(len(ids), size=min(len(ids), 500), replace=False))
        store.manifest.count = len(ids)
        return store

    def _replace(self, space: Space, new: MilvusStore) -> None:
        old = self.spaces[space]
        self.spaces[space] = new
        if not self.staging:
            self._publish(new)
        if old is not None and old.name != new.name:
            self.client.drop_collection(old.name)

    def grow_if_needed(self, space: Space) -> bool:
        store = self.spaces[space]
        if store is None:
            return False
        count = store.count
        if not count:
            return False
        plan = choose_milvus_index(count, self.config.recall_target)
        if plan.factory == store.manifest.factory:
            return False
        log.info(
            "%s: %d vectors outgrew %s; re-indexing as %s in a new collection",
            space,
            count,
            store.manifest.factory,
            plan.factory,
        )
        self._replace(space, self.build(space, *store.contents()))
        return True

    # ---- rebuild beside, then swap

    def start_rebuild(self, expected: int = 0) -> MilvusStores:
        """``expected`` is not needed: Milvus builds its index from the stored rows."""
        return MilvusStores(self.settings, self.fingerprint, self.dim, load=False, staging=True)

    def finish_rebuild(self, staging: MilvusStores) -> None:
        """Publish the rebuilt collections (the swap), then drop the ones they replace."""
        previous = {space: m.collection for space, m in self.manifests().items()}
        staging.staging = False
        for space in SPACES:
            store = staging.spaces[space]
            if store is not None:
                staging.save([space])  # publishes its manifest
            elif space in previous:  # nothing of this space any more
                self.client.delete(self.meta_name, ids=[str(space)])
            self.spaces[space] = store
        for space, name in previous.items():
            current = self.spaces[space]
            if current is None or current.name != name:
                self.client.drop_collection(name)

    def recover(self) -> str | None:
        """Drop collections of this prefix that no manifest names (an interrupted rebuild)."""
        named = {m.collection for m in self.manifests().values()}
        orphans = [
            name
            for name in self.client.list_collections()
            if self._ours(name) and name not in named
        ]
        for name in orphans:
            self.client.drop_collection(name)
        return (
            f"dropped {len(orphans)} collection(s) of an interrupted rebuild" if orphans else None
        )

    def status(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for space, manifest in self.manifests().items():
            data = asdict(manifest)
            exists = self.client.has_collection(manifest.collection)
            data["bytes"] = None
            data["health"] = (
                "ok" if exists else "collection missing: run `simmim index` (it re-queues)"
            )
            data["location"] = f"{mask_url(self.uri)} / {manifest.collection}"
            out[space] = data
        return out

    def drop_all(self) -> None:
        """Remove every collection of this prefix, manifests included (tests use it)."""
        for name in self.client.list_collections():
            if name == self.meta_name or self._ours(name):
                self.client.drop_collection(name)
        self.spaces = dict.fromkeys(SPACES)

    def close(self) -> None:
        self.client.close()
