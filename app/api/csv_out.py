"""``Accept: text/csv`` on the endpoints whose answers are tables (search, trends, alerts).

The columns are ``monitor.export``'s, the ones `simmim … --csv` and the dashboard's
download buttons write.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from monitor.export import CSV_MEDIA_TYPE

# For the OpenAPI page: these answers also come as CSV.
CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "OK"}
}


def wants_csv(request: Request) -> bool:
    """True when the Accept header ranks text/csv above JSON (quality, then order)."""
    accept = request.headers.get("accept", "")
    if "csv" not in accept:  # the common case, without parsing
        return False
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        if media not in ("text/csv", "application/json", "*/*", "application/*"):
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        kind = "csv" if media == "text/csv" else "json"
        if quality > 0 and (best is None or (quality, -position) > (best[0], best[1])):
            best = (quality, -position, kind)
    return best is not None and best[2] == "csv"


def csv_response(text: str, filename: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=text,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})},
    )
