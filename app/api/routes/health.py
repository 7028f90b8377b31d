"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.auth import authorize, bearer
from app.api.schemas import Health
from app.api.state import api_state
from app.api.tokens import Scope
from simmim import migrations
from simmim.errors import SimmimError

router = APIRouter(tags=["health"])


async def _maybe_read(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    """/healthz, /readyz and /metrics are open unless api.open_health is false (then: read scope)."""
    if not api_state(request).settings.api.open_health:
        await authorize(request, credentials.credentials if credentials else None, Scope.READ)


@router.get("/healthz", response_model=Health, dependencies=[Depends(_maybe_read)])
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready: see checks."}},
    dependencies=[Depends(_maybe_read)],
)
def readyz(request: Request) -> Response:
    """Ready to serve: the database reachable and at the current schema, the indexes
    open, the model loaded. 503 with each check's finding otherwise."""
    state = api_state(request)
    checks: dict[str, str] = {}
    try:
        migrations.require_head(state.engine)
        checks["database"] = "ok"
    except SimmimError as exc:
        checks["database"] = exc.message
    try:
        stores = state.stores()
        counts = {
            space: (store.count if store is not None else 0)
            for space, store in stores.spaces.items()
        }
        checks["indexes"] = "ok: " + ", ".join(f"{space} {n}" for space, n in counts.items())
    except SimmimError as exc:
        checks["indexes"] = exc.message
    try:
        checks["model"] = f"ok: {state.encoder.fingerprint}"
    except SimmimError as exc:
        checks["model"] = exc.message
    ready = all(value.startswith("ok") for value in checks.values())
    body = Health(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    dependencies=[Depends(_maybe_read)],
)
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
