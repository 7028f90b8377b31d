"""Article pages: main text and title by trafilatura, lead image from the page's metadata."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import urljoin

import lxml.html
import trafilatura

from indexer.net.errors import FetchError
from indexer.net.fetcher import HTML_TYPES, Fetcher
from indexer.sources.base import Candidate, ReadResult, decode_text
from indexer.urls import canonical_url
from simmim.models import Source

MIN_LEAD_IMAGE_SIDE = 200  # a declared <img> smaller than this is an icon, not a lead image


def lead_image(html: str, base_url: str) -> str | None:
    """og:image, then twitter:image, then the first <img> that is not declared small."""
    try:
        tree = lxml.html.fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return None
    for xpath in (
        '//meta[@property="og:image"]/@content',
        '//meta[@property="og:image:url"]/@content',
        '//meta[@name="twitter:image"]/@content',
        '//meta[@property="twitter:image"]/@content',
    ):
        found = [v.strip() for v in tree.xpath(xpath) if v.strip()]
        if found:
            return urljoin(base_url, found[0])
    for img in tree.xpath("//img[@src]"):
        sizes = [img.get("width", ""), img.get("height", "")]
        declared = [int(s) for s in sizes if s.strip().isdigit()]
        if declared and min(declared) < MIN_LEAD_IMAGE_SIDE:
            continue
        return urljoin(base_url, img.get("src").strip())
    return None


def _published(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        return None


def _extract(
    html: str, url: str
) -> tuple[str | None, str | None, str | None, str | None, str | None]:
    """(title, main text, author, date, lead image); CPU-bound, so it runs in a thread."""
    document = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, fast=True, include_comments=False
    )
    title = getattr(document, "title", None) if document is not None else None
    text = getattr(document, "text", None) if document is not None else None
    if not title:
        try:
            title = (lxml.html.fromstring(html).findtext(".//title") or "").strip() or None
        except (lxml.etree.ParserError, ValueError):
            title = None
    author = getattr(document, "author", None) if document is not None else None
    date = getattr(document, "date", None) if document is not None else None
    return title, text, author, date, lead_image(html, url)


async def read_page(source: Source, fetcher: Fetcher, limit: int) -> ReadResult:
    response = await fetcher.get(source.location, accept=HTML_TYPES)
    html = decode_text(response.content, response.charset)
    if not html.strip():
        raise FetchError("empty body", f"{response.url} sent no content", url=response.url)
    title, text, author, date, image = await asyncio.to_thread(_extract, html, response.url)
    if not (title or text):
        raise FetchError(
            "no content", f"{response.url}: no title or main text found", url=response.url
        )
    candidate = Candidate(
        where=response.url,
        key=canonical_url(response.url),
        url=response.url,
        title=title,
        text=text,
        author=author,
        published_at=_published(date),
        image_url=image,
    )
    return ReadResult([candidate])
