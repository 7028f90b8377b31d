"""Every error is JSON ``{"error": what went wrong, "detail": what to do or which field}``
with the status that says whose fault it was; nothing a client sends reaches a 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.api.state import NotReady
from simmim.errors import NotFound, SimmimError
from simmim.redact import mask_text

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail
        # A 401 names the scheme it wants (RFC 9110).
        self.headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None


def error_body(error: str, detail: Any = None) -> dict[str, Any]:
    return {"error": error, "detail": detail}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.error, exc.detail), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(
            error_body("invalid request", jsonable_encoder(errors)), status_code=422
        )

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(NotReady)
    async def not_ready(_: Request, exc: NotReady) -> JSONResponse:
        return JSONResponse(error_body(mask_text(exc.message), exc.hint), status_code=503)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(error_body(mask_text(exc.message), exc.hint), status_code=404)

    @app.exception_handler(SimmimError)
    async def refused(_: Request, exc: SimmimError) -> JSONResponse:
        # Our own errors say what was wrong with the request and what to do about it.
        return JSONResponse(error_body(mask_text(exc.message), exc.hint), status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("API request failed")
        return JSONResponse(
            error_body("internal error", f"{type(exc).__name__}; see the server log"),
            status_code=500,
        )
