"""What every source kind produces: candidates for items, or records that could not be one."""

from __future__ import annotations

from collections.abc import Callable
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
    cursor: dict[str, Any] | None = None  # saved on the source once the crawl succeeds
    remaining: int | None = None  # records past this crawl's cap, for the next crawls
    # problems of the read as a whole that cost no record: (where, reason, detail)
    notes: list[tuple[str, str, str]] = field(default_factory=list)


def isolated(where: str, build: Callable[[], Candidate | Rejected]) -> Candidate | Rejected:
    """One record's surprise (an overflowing time, a URL with a bad port, JSON nested too
    deep, a picture that is a bomb) becomes that record's reason, never the source's."""
    try:
        return build()
    except RecursionError:
        return Rejected(where, "unreadable record", "nested too deeply")
    except Exception as exc:
        return Rejected(where, "unreadable record", f"{type(exc).__name__}: {exc}"[:300])


def decode_line(raw: bytes, charset: str | None = None) -> tuple[str, bool]:
    """One line of a dump, decoded on its own (as :func:`decode_text`, but a legacy line is
    read as Windows-1252, the usual export), so one stray byte never turns the good lines
    into mojibake. Returns the text and whether the fallback was needed."""
    return _decode(raw, charset, legacy=("cp1252", "latin-1"))


def _decode(data: bytes, charset: str | None, *, legacy: tuple[str, ...]) -> tuple[str, bool]:
    for encoding in (charset, "utf-8"):
        if not encoding:
            continue
        try:
            return data.decode(encoding), False
        except (LookupError, UnicodeDecodeError):
            continue
    for encoding in legacy[:-1]:
        try:
            return data.decode(encoding), True
        except UnicodeDecodeError:
            continue
    return data.decode(legacy[-1]), True  # latin-1: never fails


class SourceReader(Protocol):
    async def __call__(self, source: Source, fetcher: Fetcher, limit: int) -> ReadResult: ...


def decode_text(data: bytes, charset: str | None) -> str:
    """Declared charset first, then UTF-8, then Latin-1 (which never fails)."""
    return _decode(data, charset, legacy=("latin-1",))[0]
