"""One item: its fields and scores, its image, and why it matches."""

from __future__ import annotations

import base64
import io

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api import convert
from app.api.auth import READ
from app.api.errors import ApiError
from app.api.schemas import ExplainOut, ExplainRequest, ItemOut, PathId, WordWeight
from app.api.state import ApiState, api_state
from monitor.items import ItemDetail, item_details
from simmim.db import session_factory, session_scope
from simmim.paths import DataLayout

router = APIRouter(prefix="/v1/items", tags=["items"], dependencies=[READ])
IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}


def _detail(state: ApiState, item_id: PathId) -> ItemDetail:
    with session_scope(session_factory(state.engine)) as session:
        found = item_details(session, [item_id]).get(item_id)
    if found is None:
        raise ApiError(404, f"item {item_id} not found")
    return found


@router.get("/{item_id}", response_model=ItemOut)
def get_item(request: Request, item_id: PathId) -> ItemOut:
    """The item with its source, sentiment, topics and tickers."""
    return convert.item(_detail(api_state(request), item_id))


@router.get(
    "/{item_id}/image",
    responses={200: {"content": {"image/*": {}}, "description": "The stored image."}},
    response_class=Response,
)
def get_image(request: Request, item_id: PathId) -> Response:
    state = api_state(request)
    detail = _detail(state, item_id)
    if not detail.image_sha256:
        raise ApiError(404, f"item {item_id} has no image")
    path = DataLayout(state.settings.data_dir).image_path(detail.image_sha256)
    try:
        data = path.read_bytes()
    except OSError:
        raise ApiError(404, f"the image file of item {item_id} is missing") from None
    kind = next((t for magic, t in IMAGE_TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        kind = "image/webp" if data[8:12] == b"WEBP" else "application/octet-stream"
    return Response(
        data,
        media_type=kind,
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.post("/{item_id}/explain", response_model=ExplainOut)
def explain(request: Request, item_id: PathId, body: ExplainRequest) -> ExplainOut:
    """Why it matches: the words the fused vector leaned on and where the model looked;
    with a query text and an image item, where in the image that text matches."""
    from encoder import ItemInput
    from encoder.explain import explain_fused, overlay_heatmap, text_image_map
    from simmim.models import item_text

    state = api_state(request)
    detail = _detail(state, item_id)
    config = state.settings.api
    if body.query is not None and len(body.query) > config.max_query_chars:
        raise ApiError(422, f"the query is longer than {config.max_query_chars} characters")
    encoder = state.encoder
    image = (  # the small copy where there is one: what the model reads anyway
        DataLayout(state.settings.data_dir).image_to_read(
            detail.image_sha256, state.settings.thumbnail_size
        )
        if detail.image_sha256
        else None
    )
    heatmap = None
    words: list[WordWeight] = []
    if body.query and image is not None:
        heat = text_image_map(encoder, image, body.query)
        lo, hi = float(heat.min()), float(heat.max())
        heatmap = overlay_heatmap(image, (heat - lo) / (hi - lo + 1e-9), size=256)
    else:
        found = explain_fused(
            encoder, ItemInput(text=item_text(detail.title, detail.text), image=image)
        )
        words = [WordWeight(word=w, weight=round(float(x), 6)) for w, x in found.words]
        if found.heatmap is not None and image is not None:
            heatmap = overlay_heatmap(image, found.heatmap, size=256)
    png = None
    if heatmap is not None:
        buffer = io.BytesIO()
        heatmap.save(buffer, format="PNG")
        png = base64.b64encode(buffer.getvalue()).decode()
    return ExplainOut(words=words, heatmap_png_base64=png)
