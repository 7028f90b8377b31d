"""Social-post dumps: one JSON object per line (fields in the README)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexer.local_files import confine, local_source_path, read_capped
from indexer.net.errors import FetchError
from indexer.net.fetcher import JSONL_TYPES, Fetcher
from indexer.sources.base import Candidate, ReadResult, Rejected, decode_text
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
    if not isinstance(data, dict):
        return Rejected(where, "malformed JSON", "a line must hold one object")
    text, image = data.get("text"), data.get("image")
    if not (isinstance(text, str) and text.strip()) and not (
        isinstance(image, str) and image.strip()
    ):
        return Rejected(where, "empty post", "needs 'text' or 'image'")
    try:
        published = parse_time(data.get("time"))
    except ValueError as exc:
        return Rejected(where, "bad time", str(exc))
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


async def read_jsonl(source: Source, fetcher: Fetcher, limit: int) -> ReadResult:
    location = source.location
    roots = fetcher.settings.local_roots
    if location.startswith(("http://", "https://")):
        response = await fetcher.get(location, accept=JSONL_TYPES)
        body, base, origin = (
            decode_text(response.content, response.charset),
            None,
            canonical_url(location),
        )
    else:
        path = local_source_path(location, roots)
        body, base, origin = (
            decode_text(read_capped(path, fetcher.settings.max_bytes), None),
            path.parent,
            path.as_uri(),
        )
    records: list[Candidate | Rejected] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if line.strip():
            records.append(_record(line, number, origin, base, roots))
            if len(records) >= limit:
                break
    return ReadResult(records)
