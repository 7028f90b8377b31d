"""Sources (with their health) and runs started over HTTP: crawl, a whole monitor cycle."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from app.api import convert
from app.api.auth import ADMIN, READ
from app.api.errors import ApiError
from app.api.pagination import PageParams, page_by_id
from app.api.schemas import (
    Enabled,
    PathId,
    RunOut,
    RunStarted,
    SourceCreate,
    SourceFailuresOut,
    SourceOut,
    SourcePage,
)
from app.api.state import ApiState, api_state
from indexer.source_admin import (
    add_source,
    list_sources,
    parse_every,
    set_source_enabled,
    source_failures,
)
from monitor.cycle import Runtime
from monitor.models import JobRun
from monitor.rollup import remove_source
from simmim.db import session_factory, session_scope
from simmim.locks import run_lock
from simmim.models import Source, SourceKind

router = APIRouter(prefix="/v1", tags=["admin"])


# ---- sources


@router.get("/sources", response_model=SourcePage, dependencies=[READ])
def get_sources(request: Request, page: Annotated[PageParams, Depends()]) -> SourcePage:
    """Every source with its health: last success, last error, failures, next due, items."""
    state = api_state(request)
    with session_scope(session_factory(state.engine)) as session:
        rows, cursor = page_by_id(
            list_sources(session),
            page,
            page.size(state.settings.api),
            key=lambda pair: pair[0].id,
        )
        return SourcePage(
            items=[convert.source(source, n) for source, n in rows], next_cursor=cursor
        )


@router.post("/sources", response_model=SourceOut, status_code=201, dependencies=[ADMIN])
def create_source(request: Request, body: SourceCreate) -> SourceOut:
    """Register a feed, page, folder or JSONL dump (local paths only inside
    crawler.local_roots, when set); the next crawl reads it."""
    state = api_state(request)
    with session_scope(session_factory(state.engine)) as session:
        source = add_source(
            session,
            body.location,
            SourceKind(body.kind),
            every_s=parse_every(body.every),
            name=body.name,
            local_roots=state.settings.crawler.local_roots,
        )
        return convert.source(source, 0)


def _existing(session: Any, source_id: int) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise ApiError(404, f"source {source_id} not found")
    return source


@router.patch("/sources/{source_id}", response_model=SourceOut, dependencies=[ADMIN])
def change_source(request: Request, source_id: PathId, body: Enabled) -> SourceOut:
    """Enable or disable crawling of a source (its items stay)."""
    with session_scope(session_factory(api_state(request).engine)) as session:
        source = _existing(session, source_id)
        set_source_enabled(session, str(source.id), body.enabled)
        session.flush()
        [(shown, items)] = list_sources(session, [source.id])
        return convert.source(shown, items)


@router.get("/sources/{source_id}/failures", response_model=SourceFailuresOut, dependencies=[READ])
def get_source_failures(
    request: Request, source_id: PathId, runs: Annotated[int, Query(ge=1, le=1000)] = 50
) -> SourceFailuresOut:
    """The records of the source's recent crawls that were not stored (dump line or URL,
    reason), identical ones folded, newest first."""
    with session_scope(session_factory(api_state(request).engine)) as session:
        found = source_failures(session, _existing(session, source_id), runs=runs)
        return SourceFailuresOut.model_validate(found, from_attributes=True)


@router.delete("/sources/{source_id}", status_code=204, dependencies=[ADMIN])
def delete_source(request: Request, source_id: PathId) -> Response:
    """Delete a source, every item crawled from it and the trends they fed."""
    state = api_state(request)
    with (
        run_lock(state.engine, "crawl", wait=True),
        session_scope(session_factory(state.engine)) as session,
    ):
        _existing(session, source_id)
        remove_source(session, str(source_id))
    return Response(status_code=204)


# ---- runs


def _start(state: ApiState, job: str, work: Callable[[Runtime], dict[str, Any]]) -> int:
    """Run ``work`` on a thread of this process as one JobRun; its id as soon as it exists."""
    started: queue.Queue[int] = queue.Queue(maxsize=1)

    def target() -> None:
        runtime = Runtime(state.settings, state.engine)
        runtime.runner = f"{runtime.runner} (API)"
        runtime.record(job, lambda: work(runtime), on_start=started.put)

    threading.Thread(target=target, name=f"simmim-api-{job}", daemon=True).start()
    return started.get(timeout=60)


def _crawl(runtime: Runtime) -> dict[str, Any]:
    with run_lock(runtime.engine, "crawl", wait=True):
        return runtime.crawl()


def _monitor_once(runtime: Runtime) -> dict[str, Any]:
    runtime.wait_for_locks = True
    runs = runtime.run_once()
    return {
        "steps": [
            {"job": run.job, "run_id": run.id, "ok": run.ok, "error": run.error} for run in runs
        ],
        "ok": all(run.ok for run in runs),
    }


@router.post("/crawl", response_model=RunStarted, status_code=202, dependencies=[ADMIN])
def start_crawl(request: Request) -> RunStarted:
    """Crawl every due source now; GET /v1/runs/{run_id} follows it."""
    return RunStarted(run_id=_start(api_state(request), "crawl", _crawl))


@router.post("/monitor/once", response_model=RunStarted, status_code=202, dependencies=[ADMIN])
def start_cycle(request: Request) -> RunStarted:
    """One whole cycle (crawl, index, score, detect, notify), as `simmim monitor once --wait`."""
    return RunStarted(run_id=_start(api_state(request), "monitor-once", _monitor_once))


@router.get("/runs/{run_id}", response_model=RunOut, dependencies=[READ])
def get_run(request: Request, run_id: PathId) -> RunOut:
    """A run's state: finished_at null while it runs; ok and summary (or error) after."""
    with session_scope(session_factory(api_state(request).engine)) as session:
        run = session.get(JobRun, run_id)
        if run is None:
            raise ApiError(404, f"run {run_id} not found")
        return RunOut(
            id=run.id,
            job=run.job,
            started_at=run.started_at,
            finished_at=run.finished_at,
            ok=run.ok,
            summary=dict(run.summary or {}),
            error=run.error,
        )
