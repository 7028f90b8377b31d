"""RSS/Atom feeds through feedparser, with conditional GET."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from functools import partial
from typing import Any

from indexer.feed_parse import FeedParseError, parse_feed
from indexer.net.errors import FetchError
from indexer.net.fetcher import FEED_TYPES, Fetcher
from indexer.sources.base import Candidate, ReadResult, Rejected, isolated
from indexer.text import strip_html
from indexer.urls import canonical_url
from simmim.models import Source


def _published(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        parsed = entry.get(key)
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return None


def _image_url(entry: Any) -> str | None:
    """Enclosure, media:content or media:thumbnail: the first that is an image."""
    for link in entry.get("links", []):
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return str(link["href"])
    for media in entry.get("media_content", []):
        if media.get("url") and (
            media.get("medium") == "image" or str(media.get("type", "")).startswith("image/")
        ):
            return str(media["url"])
    for thumb in entry.get("media_thumbnail", []):
        if thumb.get("url"):
            return str(thumb["url"])
    return None


def _entry(source: Source, number: int, entry: Any) -> Candidate | Rejected:
    link = entry.get("link")
    title = strip_html(entry.get("title", "")) or None
    summary = strip_html(entry.get("summary", "")) or None
    if not link and not (title or summary):
        return Rejected(
            f"{source.location} entry {number}", "empty entry", "no link, title or summary"
        )
    key = (
        canonical_url(link)
        if link
        else f"{canonical_url(source.location)}#{entry.get('id') or title}"
    )
    return Candidate(
        where=link or f"{source.location} entry {number}",
        key=key,
        url=link,
        external_id=entry.get("id"),
        title=title,
        text=summary,
        author=entry.get("author"),
        published_at=_published(entry),
        image_url=_image_url(entry),
    )


async def read_rss(source: Source, fetcher: Fetcher, limit: int) -> ReadResult:
    response = await fetcher.get(
        source.location,
        accept=FEED_TYPES,
        etag=source.http_etag,
        last_modified=source.http_last_modified,
    )
    if response.not_modified:
        return ReadResult(
            [], not_modified=True, etag=source.http_etag, last_modified=source.http_last_modified
        )
    try:
        feed = await parse_feed(
            response.content, response.headers.get("content-type", ""), response.url, MAX_ENTRIES
        )
    except FeedParseError as exc:
        raise FetchError("feed parser failed", str(exc), url=source.location) from exc
    if not feed.entries:
        if feed.bozo:
            raise FetchError(
                "malformed feed",
                f"{source.location}: {feed.bozo_exception}",
                url=source.location,
            )
        return ReadResult(
            [],
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
        )
    numbered, cursor, remaining = _this_crawl(list(enumerate(feed.entries, start=1)), source, limit)
    records: list[Candidate | Rejected] = [
        isolated(f"{source.location} entry {number}", partial(_entry, source, number, entry))
        for number, entry in numbered
    ]
    if feed.bozo and not any(isinstance(r, Candidate) for r in records):
        # feedparser is lenient; a broken feed that yields nothing usable fails the source
        raise FetchError(
            "malformed feed",
            f"{source.location}: {feed.bozo_exception}",
            url=source.location,
        )
    return ReadResult(
        records,
        # A feed read in parts is fetched in full next time: its 304 would hide the rest.
        etag=None if remaining else response.headers.get("etag"),
        last_modified=None if remaining else response.headers.get("last-modified"),
        cursor=cursor,
        remaining=remaining,
    )


MAX_ENTRIES = 20_000  # parsed per feed (the response is capped at crawler.max_bytes anyway)
Numbered = list[tuple[int, Any]]


def _this_crawl(
    entries: Numbered, source: Source, limit: int
) -> tuple[Numbered, dict[str, list[str]] | None, int]:
    """The entries this crawl takes, the cursor for the next one, and how many wait.

    A feed of at most ``limit`` entries is taken whole. A longer one is read in the order
    of (date, link), as a span [lo, hi] that grows at both ends over crawls: first what is
    past ``hi`` (the oldest of those first, so the span has no gap), then the backlog
    before ``lo`` (newest first), whichever order the feed lists them in; the link breaks
    ties, so entries dated alike (a date-only feed) are never skipped. Once nothing
    waits, the next crawl starts over from the newest (known entries are duplicates,
    never stored twice). Entries without a date come first, in feed order."""
    if len(entries) <= limit:
        return entries, None, 0
    dated: list[tuple[list[str], int, Any]] = []
    undated: Numbered = []
    for n, e in entries:
        when = _safe_published(e)
        if when is None:
            undated.append((n, e))
        else:
            dated.append(([when.isoformat(), str(e.get("link") or e.get("id") or n)], n, e))
    span = source.read_cursor or {}
    lo, hi = span.get("lo"), span.get("hi")
    if isinstance(lo, list) and isinstance(hi, list):
        fresh = sorted((d for d in dated if d[0] > hi), key=lambda d: d[0])
        backlog = sorted((d for d in dated if d[0] < lo), key=lambda d: d[0], reverse=True)
    else:  # a new pass: everything waits, newest first
        lo = hi = None
        fresh, backlog = [], sorted(dated, key=lambda d: d[0], reverse=True)
    taken = undated[:limit]
    room = limit - len(taken)
    new = fresh[:room]
    old = backlog[: room - len(new)]
    remaining = len(undated) - len(taken) + len(fresh) - len(new) + len(backlog) - len(old)
    taken += [(n, e) for _, n, e in new + old]
    marks = [position for position, _, _ in new + old] + ([lo, hi] if lo and hi else [])
    cursor = {"lo": min(marks), "hi": max(marks)} if remaining and marks else None
    return taken, cursor, remaining


def _safe_published(entry: Any) -> datetime | None:
    try:
        return _published(entry)
    except (OverflowError, ValueError, TypeError, OSError):
        return None
