"""Adding, listing and switching sources: the functions the CLI and dashboard share."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from indexer.local_files import inside_roots
from simmim.errors import NotFound, SimmimError
from simmim.models import MAX_EVERY_S, CrawlRun, Item, ItemStatus, Source, SourceKind
from simmim.redact import mask_url

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_LINE_OF = re.compile(r"^(.+) (line \d+)$")


class SourceError(SimmimError):
    """A source cannot be added or found as asked."""


def parse_every(text: str) -> int:
    """'15m', '2h', '1d', '90s' or plain seconds -> seconds."""
    match = _DURATION.match(text[:40])
    if not match or int(match.group(1)) == 0:
        raise SourceError(f"--every {text!r} is not a duration", hint="use e.g. 30s, 15m, 2h or 1d")
    return checked_every(int(match.group(1)) * _UNITS[match.group(2)], text)


def checked_every(seconds: int, given: object = None) -> int:
    if not 1 <= seconds <= MAX_EVERY_S:
        raise SourceError(
            f"--every {given if given is not None else seconds!r} is out of range",
            hint="a source is crawled at least once a year and at most every second: "
            "use e.g. 15m, 2h, 1d or 366d",
        )
    return seconds


def _check_location(location: str, kind: SourceKind, local_roots: Sequence[Path]) -> str:
    if kind in (SourceKind.RSS, SourceKind.PAGE) or location.startswith(("http://", "https://")):
        try:
            parts = urlsplit(location)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018  (raises on a port out of range)
        except ValueError:
            valid = False
        if not valid:
            raise SourceError(
                f"{mask_url(location)!r} is not an http(s) URL",
                hint=f"a {kind.value} source needs one",
            )
        return location
    path = Path(location).expanduser().resolve()
    if local_roots and not inside_roots(path, local_roots):
        raise SourceError(
            f"{path} is outside the configured local roots",
            hint="put the data under one of SIMMIM_CRAWLER__LOCAL_ROOTS "
            f"({', '.join(str(r) for r in local_roots)}) or add its folder there",
        )
    if kind is SourceKind.FOLDER and not path.is_dir():
        raise SourceError(f"folder {path} does not exist")
    if kind is SourceKind.JSONL and not path.is_file():
        raise SourceError(
            f"file {path} does not exist", hint="give a JSONL file path or an http(s) URL"
        )
    return str(path)


def default_name(location: str) -> str:
    try:
        parts = urlsplit(location)
    except ValueError:
        return mask_url(location)[:200]
    if parts.hostname:
        return f"{parts.hostname}{parts.path.rstrip('/')}"[:200]
    return Path(location).name[:200] or location[:200]


def add_source(
    session: Session,
    location: str,
    kind: SourceKind,
    *,
    every_s: int = 900,
    name: str | None = None,
    local_roots: Sequence[Path] = (),
) -> Source:
    """Register a source; a local one must lie inside ``local_roots`` when any are set."""
    checked_every(every_s)
    source = Source(
        name=name or default_name(location),
        kind=kind,
        location=_check_location(location, kind, local_roots),
        every_s=every_s,
    )
    session.add(source)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise SourceError(
            f"a source named {source.name!r} exists", hint="pick another --name"
        ) from exc
    return source


def find_source(session: Session, ref: str) -> Source:
    """By id or by name."""
    match = Source.name == ref
    query = select(Source).where(or_(match, Source.id == int(ref)) if ref.isdigit() else match)
    source = session.scalars(query).first()
    if source is None:
        raise NotFound(f"no source {ref!r}", hint="see `simmim source list`")
    return source


def list_sources(session: Session, ids: Sequence[int] | None = None) -> list[tuple[Source, int]]:
    """Every source (or these ones) with its item count."""
    counted = select(Item.source_id, func.count(Item.id)).group_by(Item.source_id)
    chosen = select(Source).order_by(Source.id)
    if ids is not None:
        counted = counted.where(Item.source_id.in_(list(ids)))
        chosen = chosen.where(Source.id.in_(list(ids)))
    counts = dict(session.execute(counted).all())
    return [(s, int(counts.get(s.id, 0))) for s in session.scalars(chosen)]


def set_source_enabled(session: Session, ref: str, enabled: bool) -> Source:
    """Switch crawling of a source on or off; its items stay either way."""
    source = find_source(session, ref)
    source.enabled = enabled
    return source


@dataclass(frozen=True)
class FailedRecord:
    where: str  # the URL, or "line N" of a dump
    reason: str
    detail: str
    last_seen: datetime
    times: int  # how many of the runs read failed on it (a feed entry fails every crawl)


@dataclass(frozen=True)
class SourceFailures:
    source: Source
    records: list[FailedRecord]  # newest first
    not_kept: int  # failed records counted in those runs beyond what a run keeps
    runs: int  # how many recent crawls were read


def source_failures(session: Session, source: Source, *, runs: int = 50) -> SourceFailures:
    """The records of a source's recent crawls that were not stored, with why.

    ``simmim source failures``, the Sources page and the API read this one function.
    """
    rows = session.scalars(
        select(CrawlRun)
        .where(CrawlRun.source_id == source.id)
        .order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc())
        .limit(runs)
    ).all()
    folded: dict[tuple[str, str], FailedRecord] = {}
    not_kept = 0
    for run in rows:
        kept = (run.reasons or {}).get("failures", [])  # none in rows of older versions
        not_kept += max(run.failed - len(kept), 0)
        for problem in kept:
            where = _short_where(str(problem.get("where", "")), source.location)
            key = (where, str(problem.get("reason", "")))
            seen = folded.get(key)
            folded[key] = (
                FailedRecord(where, key[1], str(problem.get("detail", "")), run.started_at, 1)
                if seen is None
                else replace(seen, times=seen.times + 1)  # newest first: keep its detail
            )
    return SourceFailures(source, list(folded.values()), not_kept, len(rows))


def _short_where(where: str, location: str) -> str:
    """ "file:///data/posts.jsonl line 12" reads as "line 12" under its own source."""
    found = _LINE_OF.match(where)
    if found and _last_part(found[1]) == _last_part(location):
        return found[2]
    return where


def _last_part(location: str) -> str:
    return re.split(r"[\\/]", location.rstrip("/\\"))[-1]


@dataclass(frozen=True)
class CorpusCounts:
    sources: int
    enabled_sources: int
    items_by_status: dict[ItemStatus, int]


def corpus_counts(session: Session) -> CorpusCounts:
    """How many sources and items exist (``simmim status``, the dashboard's System page)."""
    sources = session.scalar(select(func.count(Source.id))) or 0
    enabled = session.scalar(select(func.count(Source.id)).where(Source.enabled)) or 0
    by_status = {
        ItemStatus(status): int(count)
        for status, count in session.execute(
            select(Item.status, func.count(Item.id)).group_by(Item.status)
        ).all()
    }
    return CorpusCounts(sources, enabled, by_status)
