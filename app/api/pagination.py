"""Cursor pagination: an opaque cursor names the last row served; the next page starts after."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import Query

from app.api.errors import ApiError
from app.api.schemas import MAX_ID
from simmim.settings import ApiSettings

T = TypeVar("T")


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "invalid cursor", "pass back the next_cursor of a page") from None


def cursor_int(value: Any, *, high: int = MAX_ID) -> int:
    """A cursor's number, or 422: a bool, a float (1e400 decodes to inf), a string or a
    number past any id (10**30 overflows a 64-bit column) never reaches the database."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ApiError(422, "invalid cursor", "pass back the next_cursor of a page")
    return value


class PageParams:
    """``?limit=&cursor=`` for every list (limit capped by api.max_page_size)."""

    def __init__(
        self,
        limit: int | None = Query(None, ge=1, description="Rows per page."),
        cursor: str | None = Query(
            None, max_length=500, description="next_cursor of the last page."
        ),
    ) -> None:
        self.limit, self.cursor = limit, cursor

    def size(self, config: ApiSettings) -> int:
        return min(self.limit or config.page_size, config.max_page_size)


def page_by_id(
    rows: Sequence[T], params: PageParams, size: int, key: Callable[[T], int]
) -> tuple[list[T], str | None]:
    """Rows in ascending id order, after the cursor's id."""
    after = decode_cursor(params.cursor)
    if after is not None:
        after = cursor_int(after)
    ordered = sorted(rows, key=key)
    if after is not None:
        ordered = [row for row in ordered if key(row) > after]
    chunk = ordered[:size]
    more = len(ordered) > size
    return chunk, encode_cursor(key(chunk[-1])) if more and chunk else None
