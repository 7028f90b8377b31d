"""What every source kind produces: candidates for items, or records that could not be one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from indexer.net.errors import FetchError
from indexer.net.fetcher import Fetcher
from simmim.models import Source


@dataclass
class Candidate:
    """One would-be item, before dedup and image download."""

    where: str  # URL or file/line, for error reports
    key: str  # identity for dedup: canonical URL, or a stable synthetic key
    url: str | None = None  # a link a user can open
    external_id: str | None = None
    title: str | None = None
    text: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    image_url: str | None = None  # fetched by the crawler
    image_path: Path | None = None  # read from disk
    image_error: FetchError | None = None  # the image was refused before any read; text stays
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rejected:
    """A record that could not become an item (malformed line, unreadable entry)."""

    where: str
    reason: str
    detail: str


@dataclass
class ReadResult:
    records: list[Candidate | Rejected]
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None


class SourceReader(Protocol):
    async def __call__(self, source: Source, fetcher: Fetcher, limit: int) -> ReadResult: ...


def decode_text(data: bytes, charset: str | None) -> str:
    """Declared charset first, then UTF-8, then Latin-1 (which never fails)."""
    for encoding in (charset, "utf-8"):
        if not encoding:
            continue
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")
