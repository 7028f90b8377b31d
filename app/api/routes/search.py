"""Search by text, image (JSON base64 or a multipart upload) or vector; more like this."""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from PIL import Image
from starlette.concurrency import run_in_threadpool

from app.api import convert
from app.api.auth import READ
from app.api.csv_out import CSV_RESPONSES, csv_response, wants_csv
from app.api.errors import ApiError
from app.api.schemas import Filters, PathId, SearchRequest, SearchResponse, SimilarRequest, Space
from app.api.state import ApiState, api_state
from indexer.search import SearchFilters, SearchResult, more_like_this, search
from monitor.export import SEARCH_COLUMNS, search_rows, to_csv
from monitor.filters import search_filters
from monitor.items import hit_scores

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[READ])


def _limits(state: ApiState, k: int, text: str | None) -> None:
    config = state.settings.api
    if k > config.max_k:
        raise ApiError(422, f"k={k} is above the limit of {config.max_k}", "ask for fewer")
    if text is not None and len(text) > config.max_query_chars:
        raise ApiError(
            422, f"the text is {len(text)} characters, the limit {config.max_query_chars}"
        )


def _filters(filters: Filters) -> SearchFilters:
    return search_filters(
        since=filters.since,
        until=filters.until,
        sources=filters.sources,
        topics=filters.topics,
        tickers=filters.tickers,
        sentiments=filters.sentiments,
    )


def _response(request: Request, results: list[SearchResult]) -> SearchResponse | Response:
    state = api_state(request)
    scores = hit_scores(state.engine, [r.item_id for r in results])
    if wants_csv(request):
        return csv_response(to_csv(search_rows(results, scores), SEARCH_COLUMNS), "search.csv")
    return SearchResponse(
        results=[convert.hit(r, scores.get(r.item_id)) for r in results],
        warnings=state.search_warnings,
    )


def _run(
    request: Request,
    *,
    text: str | None,
    image: Image.Image | None,
    vector: list[float] | None,
    space: str,
    k: int,
    filters: Filters,
    collapse: bool,
) -> SearchResponse | Response:
    state = api_state(request)
    _limits(state, k, text)
    if text is not None and not text.strip():
        text = None
    if vector is not None and (text or image is not None):
        raise ApiError(422, "give a vector, or a text and/or an image, not both")
    if vector is None and text is None and image is None:
        raise ApiError(422, "a search needs a text, an image, both, or a vector")
    stores = state.stores()
    query = None
    encoder = None
    if vector is not None:
        query = np.asarray(vector, np.float32)
        if query.shape != (stores.dim,) or not np.all(np.isfinite(query)):
            raise ApiError(
                422, f"the vector must be {stores.dim} finite numbers (this index's dimension)"
            )
    else:
        encoder = state.encoder
        if encoder.fingerprint != stores.fingerprint:
            raise ApiError(
                409,
                "the index was built by another model than the one configured",
                "run `simmim index --rebuild`, or configure the index's model",
            )
    started = time.perf_counter()
    results = search(
        state.engine,
        encoder,
        stores,
        text=text,
        image=image,
        vector=query,
        space=space,
        k=k,
        filters=_filters(filters),
        collapse=collapse,
    )
    request.app.state.metrics.observe_search(space, time.perf_counter() - started)
    return _response(request, results)


@router.post("/search", response_model=SearchResponse, responses=CSV_RESPONSES)
async def search_json(request: Request, body: SearchRequest) -> SearchResponse | Response:
    """Top-k items for a text, an image (base64), both, or a query vector."""

    def run() -> SearchResponse | Response:
        image = None
        if body.image_base64 is not None:
            image, _ = convert.decoded_image(body.image_base64, api_state(request).settings)
        return _run(
            request,
            text=body.text,
            image=image,
            vector=body.vector,
            space=body.space,
            k=body.k,
            filters=body.filters,
            collapse=body.collapse,
        )

    if body.vector is not None and body.image_base64 is None and not body.text:
        # A vector query costs about a millisecond: answered on the event loop, it skips
        # the hand-over to a worker thread and back (and the GIL convoy of many threads).
        return run()
    return await run_in_threadpool(run)  # encoding a text or image: off the event loop


@router.post("/search/upload", response_model=SearchResponse, responses=CSV_RESPONSES)
def search_upload(
    request: Request,
    image: Annotated[UploadFile, File(description="The query image.")],
    text: Annotated[str | None, Form()] = None,
    space: Annotated[Space, Form()] = "fused",
    k: Annotated[int, Form(ge=1)] = 10,
    collapse: Annotated[bool, Form()] = True,
) -> SearchResponse | Response:
    """Search with an uploaded image file (and optionally a text): curl -F image=@x.jpg.
    ``space=image`` with no text: images like this one."""
    state = api_state(request)
    picture = convert.checked_image(image.file.read(), state.settings)
    return _run(
        request,
        text=text,
        image=picture,
        vector=None,
        space=space,
        k=k,
        filters=Filters(),
        collapse=collapse,
    )


@router.post("/items/{item_id}/similar", response_model=SearchResponse, responses=CSV_RESPONSES)
def similar(request: Request, item_id: PathId, body: SimilarRequest) -> SearchResponse | Response:
    """More like this: the items nearest to this item's own vector."""
    state = api_state(request)
    _limits(state, body.k, None)
    results = more_like_this(
        state.engine,
        state.stores(),
        item_id,
        space=body.space,
        k=body.k,
        filters=_filters(body.filters),
        collapse=body.collapse,
    )
    return _response(request, results)
