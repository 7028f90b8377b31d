"""Big feeds are parsed in a child process: same entries as in a thread, killed on cancel."""

from __future__ import annotations

import asyncio

import psutil
import pytest

from indexer import feed_parse
from indexer.feed_parse import BIG_FEED_BYTES, FeedParseError, parse, parse_feed
from tests.crawl_helpers import rss

XML = "application/rss+xml"


def big_feed(entries: int = 2_000) -> bytes:
    content = rss(
        [
            {
                "title": f"Entry {n} &amp; more",
                "link": f"http://example.org/e{n}",
                "summary": f"<p>Body of entry {n}</p>",
                "enclosure": f"http://example.org/e{n}.jpg",
            }
            for n in range(entries)
        ]
    )
    assert len(content) >= BIG_FEED_BYTES
    return content


def test_a_big_feed_parsed_in_a_child_gives_what_a_thread_gives() -> None:
    content = big_feed()
    in_child = asyncio.run(parse_feed(content, XML, "http://example.org/feed.xml", 30))
    in_thread = parse(content, XML, "http://example.org/feed.xml", 30)
    assert len(in_child.entries) == 30
    assert in_child == in_thread
    first = in_child.entries[0]
    assert first.title == "Entry 0 & more"
    assert first.published_parsed[:3] == (2026, 3, 3)  # feedparser's aliases survive
    assert first.links[-1]["href"] == "http://example.org/e0.jpg"
    assert not in_child.bozo


def test_a_malformed_big_feed_is_reported_as_bozo_from_the_child() -> None:
    content = big_feed()[:-200]  # cut mid-item: not well-formed any more
    parsed = asyncio.run(parse_feed(content, XML, "http://example.org/feed.xml", 5))
    assert parsed.bozo and parsed.bozo_exception
    assert parsed == parse(content, XML, "http://example.org/feed.xml", 5)


def test_a_cancelled_parse_kills_its_child() -> None:
    content = big_feed(20_000)  # seconds of parsing

    async def cancel_midway() -> list[int]:
        before = {c.pid for c in psutil.Process().children()}
        task = asyncio.create_task(parse_feed(content, XML, "http://example.org/f.xml", 5))
        children: list[int] = []
        for _ in range(200):
            await asyncio.sleep(0.02)
            children = [c.pid for c in psutil.Process().children() if c.pid not in before]
            if children:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return children

    children = asyncio.run(cancel_midway())
    assert children, "the big feed was not parsed in a child process"
    assert not any(psutil.pid_exists(pid) for pid in children)  # killed and reaped


def test_a_child_that_dies_is_an_error_that_names_the_feed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed_parse.sys, "executable", "/bin/false")
    with pytest.raises(FeedParseError, match=r"http://example.org/f.xml exited with code 1"):
        asyncio.run(parse_feed(big_feed(), XML, "http://example.org/f.xml", 5))
