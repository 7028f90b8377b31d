"""Feed parsing, with big feeds in a child process.

feedparser is pure Python: a 2.5 MB feed takes seconds and allocates millions of objects.
In a thread it shares the GIL with the crawl's event loop, and its allocations trigger the
cyclic collector's full passes, which walk the whole process heap (torch, the models, the
indexes) while every thread waits: a stall of over a second measured in a loaded process.
A child process parses it with its own heap and GIL and hands back only the entries the
crawl will read. Small feeds, the common case, stay in a thread (no process start).

This module imports nothing of ours, so the child starts with feedparser alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import sys
from dataclasses import dataclass, field
from typing import Any

import feedparser

BIG_FEED_BYTES = 256 * 1024  # parse in a child from this size (about 1,500 entries)


@dataclass
class ParsedFeed:
    entries: list[Any] = field(default_factory=list)  # feedparser's entries, the first `limit`
    bozo: bool = False
    bozo_exception: str | None = None


class FeedParseError(RuntimeError):
    """The child parser died or answered nonsense (not a malformed feed: that is bozo)."""


def parse(content: bytes, content_type: str, location: str, limit: int) -> ParsedFeed:
    feed = feedparser.parse(
        content, response_headers={"content-type": content_type, "content-location": location}
    )
    problem = feed.get("bozo_exception")
    return ParsedFeed(
        entries=list(feed.entries[:limit]),
        bozo=bool(feed.bozo),
        bozo_exception=None if problem is None else str(problem),
    )


async def parse_feed(content: bytes, content_type: str, location: str, limit: int) -> ParsedFeed:
    """Parse off the event loop: in a thread when small, in a child process when big."""
    if len(content) < BIG_FEED_BYTES:
        return await asyncio.to_thread(parse, content, content_type, location, limit)
    return await _parse_in_child(content, content_type, location, limit)


async def _parse_in_child(
    content: bytes, content_type: str, location: str, limit: int
) -> ParsedFeed:
    """One child per big feed, killed if the crawl is cancelled or times out meanwhile."""
    request = pickle.dumps((content, content_type, location, limit))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        answer, errors = await child.communicate(request)
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await asyncio.shield(child.wait())
    if child.returncode != 0:
        tail = errors.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise FeedParseError(
            f"the feed parser for {location} exited with code {child.returncode}: {tail[0]}"
        )
    # Our own child wrote it, from the request we sent: not untrusted input.
    result = pickle.loads(answer)
    if not isinstance(result, ParsedFeed):
        raise FeedParseError(f"the feed parser for {location} answered {type(result).__name__}")
    return result


def _child() -> None:
    content, content_type, location, limit = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps(parse(content, content_type, location, limit)))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    # Through the package, not __main__: the answer must unpickle as indexer.feed_parse's.
    from indexer.feed_parse import _child as child

    child()
