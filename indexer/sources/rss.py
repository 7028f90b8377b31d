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
            response.content, response.headers.get("content-type", ""), response.url, limit
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
    records: list[Candidate | Rejected] = [
        isolated(f"{source.location} entry {number}", partial(_entry, source, number, entry))
        for number, entry in enumerate(feed.entries, start=1)
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
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
    )
