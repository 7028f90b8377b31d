"""Social-post dumps: one JSON object per line (fields in the README)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from indexer.local_files import confine, local_source_path, read_capped
from indexer.net.errors import FetchError
from indexer.net.fetcher import JSONL_TYPES, Fetcher
from indexer.sources.base import Candidate, ReadResult, Rejected, decode_line, isolated
from indexer.urls import canonical_url
from simmim.models import Source

ENGAGEMENT_FIELDS = ("likes", "shares", "retweets", "replies", "views")


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (a trailing Z allowed; no zone means UTC) or Unix seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise ValueError(f"unsupported time {value!r}")


def _record(
    line: str, number: int, origin: str, base: Path | None, roots: Sequence[Path] = ()
) -> Candidate | Rejected:
    where = f"{origin} line {number}"
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return Rejected(where, "malformed JSON", exc.msg)
    except ValueError as exc:  # an integer of thousands of digits
        return Rejected(where, "malformed JSON", str(exc)[:300])
    if not isinstance(data, dict):
        return Rejected(where, "malformed JSON", "a line must hold one object")
    text, image = data.get("text"), data.get("image")
    if not (isinstance(text, str) and text.strip()) and not (
        isinstance(image, str) and image.strip()
    ):
        return Rejected(where, "empty post", "needs 'text' or 'image'")
    try:
        published = parse_time(data.get("time"))
    except (ValueError, OverflowError, OSError) as exc:  # 1e20, Infinity, 20 digits
        return Rejected(where, "bad time", f"{data.get('time')!r}: {exc}"[:300])
    url = data.get("url") if isinstance(data.get("url"), str) else None
    post_id = data.get("id")
    key = (
        canonical_url(url)
        if url
        else f"{origin}#{post_id if post_id is not None else hashlib.sha1(line.encode()).hexdigest()}"
    )
    given = data.get("engagement")
    engagement: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
    engagement.update(
        {k: data[k] for k in ENGAGEMENT_FIELDS if isinstance(data.get(k), int | float)}
    )
    candidate = Candidate(
        where=where,
        key=key,
        url=url,
        external_id=str(post_id) if post_id is not None else None,
        title=data.get("title") if isinstance(data.get("title"), str) else None,
        text=text if isinstance(text, str) else None,
        author=str(data["author"]) if data.get("author") is not None else None,
        published_at=published,
        extra={"engagement": engagement} if engagement else {},
    )
    if isinstance(image, str) and image.strip():
        image = image.strip()
        if image.startswith(("http://", "https://")):
            candidate.image_url = image
        elif base is not None:
            try:
                candidate.image_path = confine(image, base, roots)
            except FetchError as exc:  # the post keeps its text; the reason is recorded
                candidate.image_error = exc
        else:
            return Rejected(where, "bad image", f"relative image path {image!r} in a remote dump")
    return candidate


HEAD_BYTES = 4096  # a dump whose first bytes change is a new dump: read it from the start
BOM = b"\xef\xbb\xbf"


async def read_jsonl(source: Source, fetcher: Fetcher, limit: int) -> ReadResult:
    """Up to ``limit`` records from where the last crawl stopped (``source.read_cursor``):
    a dump larger than that arrives over several crawls. After the last line the next pass
    starts over, so lines added or changed anywhere are found (known ones are duplicates,
    skipped before any download)."""
    location = source.location
    roots = fetcher.settings.local_roots
    charset = None
    if location.startswith(("http://", "https://")):
        response = await fetcher.get(location, accept=JSONL_TYPES)
        data, base, origin, charset = (
            response.content,
            None,
            canonical_url(location),
            response.charset,
        )
    else:
        path = local_source_path(location, roots)
        data = await asyncio.to_thread(read_capped, path, fetcher.settings.max_bytes)
        base, origin = path.parent, path.as_uri()
    lines = data.removeprefix(BOM).split(b"\n")
    head = hashlib.sha256(data[:HEAD_BYTES]).hexdigest()
    previous = source.read_cursor or {}
    start = int(previous.get("line", 0)) if previous.get("head") == head else 0
    if start > len(lines):  # the dump shrank: it is another dump now
        start = 0
    records: list[Candidate | Rejected] = []
    number = start
    while number < len(lines) and len(records) < limit:
        raw = lines[number]
        number += 1
        if not raw.strip():
            continue
        line, replaced = decode_line(raw, charset)
        record = isolated(
            f"{origin} line {number}", partial(_record, line, number, origin, base, roots)
        )
        if replaced and isinstance(record, Candidate):
            record.extra["warning"] = "not UTF-8: this line was read as Windows-1252"
        records.append(record)
    remaining = sum(1 for raw in lines[number:] if raw.strip())
    cursor = {"line": number, "head": head} if remaining else None
    return ReadResult(records, cursor=cursor, remaining=remaining)
