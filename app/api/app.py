"""The FastAPI application: every capability of the CLI and dashboard over HTTP, under /v1.

Routes call the same back-end functions as the CLI and the dashboard; this layer checks
tokens and input, shapes responses, counts requests. `simmim serve` runs it on uvicorn.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from app.api.auth import TokenCache
from app.api.errors import install_error_handlers
from app.api.metrics import ApiMetrics, ObserveAndLimit
from app.api.routes import admin, health, items, monitor, search
from app.api.schemas import ErrorOut
from app.api.state import ApiState
from simmim.errors import SimmimError
from simmim.settings import Settings, load_settings

log = logging.getLogger(__name__)
ERRORS = {
    status: {"model": ErrorOut, "description": text}
    for status, text in (
        (400, "Refused: what was wrong and what to do"),
        (401, "No token, or an unknown or revoked one"),
        (403, "The token's scope does not allow this"),
        (404, "No such object"),
        (413, "Request body too large"),
        (422, "Invalid input"),
        (503, "Not ready (model or indexes)"),
    )
}


def create_app(
    settings: Settings, *, state: ApiState | None = None, preload: bool = False
) -> FastAPI:
    """``preload``: load the model and open the indexes in the background at start-up, so
    the first search does not wait (``/readyz`` says when they are in)."""
    api_state = state or ApiState(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if preload:
            threading.Thread(target=_warm, args=(api_state,), daemon=True).start()
        yield
        api_state.close()

    # Swagger UI and ReDoc from assets in the fastapi-offline wheel, not a CDN: /docs works
    # on a machine without internet, as everything else here does.
    app = FastAPIOffline(
        title="SimMIM API",
        version="1",
        summary="Search a crawled corpus by text, image or vector; trends, alerts, sources.",
        description=(
            "Authenticate with `Authorization: Bearer <token>` (`simmim token create NAME "
            "--scope read|admin`). Read tokens may search and list; admin tokens may also "
            "write. Lists are paged with `?limit=&cursor=` (pass back `next_cursor`). Every "
            'error is `{"error": ..., "detail": ...}`.'
        ),
        lifespan=lifespan,
        responses=ERRORS,  # type: ignore[arg-type]
    )
    app.state.api = api_state
    app.state.tokens = TokenCache()
    app.state.metrics = ApiMetrics(api_state.engine)
    install_error_handlers(app)
    for module in (health, search, items, monitor, admin):
        app.include_router(module.router)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        ObserveAndLimit, metrics=app.state.metrics, max_body=settings.api.max_body_bytes
    )
    return app


def _warm(state: ApiState) -> None:
    for name, load in (("model", lambda: state.encoder), ("indexes", state.stores)):
        try:
            load()
        except SimmimError as exc:
            log.warning("API start-up: %s not ready: %s", name, exc.message)
    settle_heap()


def settle_heap() -> None:
    """Move what start-up loaded (the model, the libraries, the indexes' wrappers) out of
    the cyclic collector's sight: a full collection walks all of it (0.3-0.6 s each while
    the model loaded, measured with gc callbacks), so later ones stay short. Reference
    counting still frees these objects; only the cycle search skips them."""
    gc.collect()
    gc.freeze()


def app_from_environment() -> FastAPI:
    """For uvicorn's workers (``--workers N``): settings from the environment / SIMMIM_CONFIG."""
    return create_app(load_settings(), preload=True)
