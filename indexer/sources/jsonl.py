"""Social-post dumps: one JSON object per line (fields in the README)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from indexer.local_files import confine, local_source_path, open_regular
from indexer.net.errors import FetchError
from indexer.net.fetcher import JSONL_TYPES, Fetcher
from indexer.sources.base import Candidate, ReadResult, Rejected, decode_line, isolated
from indexer.urls import canonical_url
from simmim.models import Source

ENGAGEMENT_FIELDS = ("likes", "shares", "retweets", "replies", "views")
# A post's time under the names exports use (the first one present counts).
TIME_FIELDS = ("time", "created_at", "timestamp", "date", "published", "published_at")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: Any) -> Any:
    """JSON may escape half of a UTF-16 pair (``"\\ud83d"``): no database can store that
    code point, so it becomes U+FFFD and the post is kept."""
    return _LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (a trailing Z allowed; no zone means UTC), Unix seconds or milliseconds,
    RFC 2822 (``Wed, 02 Oct 2002 08:00:00 GMT``) or Twitter's ``Wed Oct 10 20:19:24 +0000
    2018``."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch(float(value))
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return _epoch(float(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            parsed = _written(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise ValueError(f"unsupported time {value!r}")


MILLISECONDS_FROM = 1e11  # as seconds that is the year 5138: a number this big is in ms


def _epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds / 1000 if seconds >= MILLISECONDS_FROM else seconds, UTC)


def _written(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y")
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise ValueError(
            f"not a time: {text[:60]!r} (ISO 8601, Unix seconds or RFC 2822)"
        ) from None


def _field(data: dict[str, Any], name: str) -> Any:
    """``created_at``, or a dotted path into nested objects: ``meta.posted``."""
    value: Any = data
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _record(
    line: str,
    number: int,
    origin: str,
    base: Path | None,
    roots: Sequence[Path] = (),
    time_fields: Sequence[str] = TIME_FIELDS,
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
    data = {key: _text(value) for key, value in data.items()}
    text, image = data.get("text"), data.get("image")
    if not (isinstance(text, str) and text.strip()) and not (
        isinstance(image, str) and image.strip()
    ):
        return Rejected(where, "empty post", "needs 'text' or 'image'")
    given_time = next(
        (
            found
            for found in (_field(data, name) for name in time_fields)
            if found not in (None, "")
        ),
        None,
    )
    try:
        published = parse_time(given_time)
    except (ValueError, OverflowError, OSError) as exc:  # 1e20, Infinity, 20 digits
        return Rejected(where, "bad time", f"{given_time!r}: {exc}"[:300])
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
    skipped before any download). A local dump is read as a stream from the cursor's byte
    offset, any size, one line in memory at a time; a remote one is one download of at
    most ``crawler.max_bytes``."""
    location = source.location
    roots = fetcher.settings.local_roots
    previous = source.read_cursor or {}
    named = fetcher.settings.jsonl_time_field
    time_fields = (named, *TIME_FIELDS) if named else TIME_FIELDS
    if not location.startswith(("http://", "https://")):
        path = local_source_path(location, roots)
        return _undated_note(
            await asyncio.to_thread(
                _read_local, path, previous, limit, roots, fetcher.settings.max_bytes, time_fields
            ),
            location,
            time_fields,
        )
    response = await fetcher.get(location, accept=JSONL_TYPES)
    data, origin = response.content, canonical_url(location)
    lines = data.removeprefix(BOM).split(b"\n")
    head = hashlib.sha256(data[:HEAD_BYTES]).hexdigest()
    start = int(previous.get("line", 0)) if previous.get("head") == head else 0
    if start > len(lines):  # the dump shrank: it is another dump now
        start = 0
    records: list[Candidate | Rejected] = []
    number = start
    while number < len(lines) and len(records) < limit:
        raw = lines[number]
        number += 1
        if raw.strip():
            records.append(
                _decoded(raw, number, origin, None, roots, response.charset, time_fields)
            )
    remaining = sum(1 for raw in lines[number:] if raw.strip())
    cursor = {"line": number, "head": head} if remaining else None
    return _undated_note(
        ReadResult(records, cursor=cursor, remaining=remaining), location, time_fields
    )


def _undated_note(result: ReadResult, location: str, time_fields: Sequence[str]) -> ReadResult:
    """Posts without a time are dated when crawled: a history loaded that way looks like
    one spike on the day of the load, so the crawl says so (and how to name the field)."""
    posts = [r for r in result.records if isinstance(r, Candidate)]
    undated = sum(r.published_at is None for r in posts)
    if undated:
        result.notes.append(
            (
                location,
                "no time field",
                f"{undated} of {len(posts)} posts have none of {', '.join(time_fields)}: "
                "they are dated when crawled; name their time field with "
                "SIMMIM_CRAWLER__JSONL_TIME_FIELD (a dotted path for nested ones)",
            )
        )
    return result


def _decoded(
    raw: bytes,
    number: int,
    origin: str,
    base: Path | None,
    roots: Sequence[Path],
    charset: str | None = None,
    time_fields: Sequence[str] = TIME_FIELDS,
) -> Candidate | Rejected:
    line, replaced = decode_line(raw, charset)
    record = isolated(
        f"{origin} line {number}",
        partial(_record, line, number, origin, base, roots, time_fields),
    )
    if replaced and isinstance(record, Candidate):
        record.extra["warning"] = "not UTF-8: this line was read as Windows-1252"
    return record


def _read_local(
    path: Path,
    previous: dict[str, Any],
    limit: int,
    roots: Sequence[Path],
    max_line: int,
    time_fields: Sequence[str] = TIME_FIELDS,
) -> ReadResult:
    origin = path.as_uri()
    with open_regular(path) as handle:
        head = hashlib.sha256(handle.read(HEAD_BYTES)).hexdigest()
        size = os.fstat(handle.fileno()).st_size
        number, offset = 0, 0
        if previous.get("head") == head:
            number = int(previous.get("line", 0))
            offset = int(previous.get("offset", -1))
        if offset > size:  # the dump shrank: it is another dump now
            number, offset = 0, 0
        handle.seek(0)
        if offset < 0:  # a cursor of an older version: a line number only
            for _ in range(number):
                if not handle.readline():
                    break
        else:
            handle.seek(offset)
        records: list[Candidate | Rejected] = []
        while len(records) < limit:
            raw = handle.readline(max_line + 1)
            if not raw:
                break
            number += 1
            if len(raw) > max_line and not raw.endswith(b"\n"):
                _skip_line(handle)
                records.append(
                    Rejected(
                        f"{origin} line {number}",
                        "line too long",
                        f"over {max_line} bytes (SIMMIM_CRAWLER__MAX_BYTES)",
                    )
                )
                continue
            if number == 1:
                raw = raw.removeprefix(BOM)
            if raw.strip():
                records.append(_decoded(raw, number, origin, path.parent, roots, None, time_fields))
        offset = handle.tell()
        remaining = _lines_left(handle)
    cursor = {"line": number, "offset": offset, "head": head} if remaining else None
    return ReadResult(records, cursor=cursor, remaining=remaining)


READ_CHUNK = 1 << 20  # a line longer than this is counted in pieces, never held whole


def _lines_left(handle: BinaryIO) -> int:
    """Non-blank lines from here to the end, reading a bounded piece at a time."""
    count, content = 0, False
    for piece in iter(partial(handle.readline, READ_CHUNK), b""):
        content = content or bool(piece.strip())
        if piece.endswith(b"\n"):
            count, content = count + content, False
    return count + content


def _skip_line(handle: BinaryIO) -> None:
    while True:
        piece = handle.readline(READ_CHUNK)
        if not piece or piece.endswith(b"\n"):
            return
