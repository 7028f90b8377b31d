"""A crawl: for each source, read candidates, drop duplicates, fetch images, store items.

A source's new items, its health (last success, last error, consecutive failures, next
due time with back-off, read cursor) and its CrawlRun row are written in one transaction,
each item under its own savepoint: one bad record never costs the others, and the items
and the cursor that says they were read land together.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar, cast

from sqlalchemy import Engine, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from indexer.image_store import PhashIndex, StoredImage, inspect_image, write_image
from indexer.local_files import read_capped
from indexer.net.errors import FetchError
from indexer.net.fetcher import IMAGE_TYPES, Fetcher
from indexer.sources import READERS
from indexer.sources.base import Candidate, Rejected
from indexer.text import clean_text, text_sha256
from simmim.clock import Clock, utcnow
from simmim.db import session_factory, session_scope
from simmim.files import sweep_temp_files
from simmim.images import ImageDecodeError
from simmim.models import MAX_EVERY_S, CrawlRun, Item, ItemStatus, Source
from simmim.paths import DataLayout
from simmim.redact import mask_text
from simmim.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BACKOFF = timedelta(days=1)
EXAMPLES_KEPT = 10
# Failing records are kept one by one (line, reason) for `simmim source failures`; bounded,
# so a dump of bad lines cannot grow one run row without limit.
FAILURES_KEPT = 500

# Built once: constructing a statement costs more CPU than running it on SQLite, and the
# crawl runs these once per page or per source.
_ITEMS, _SOURCES = cast(Table, Item.__table__), cast(Table, Source.__table__)
_KNOWN_URLS = select(_ITEMS.c.url_sha256).where(
    _ITEMS.c.url_sha256.in_(bindparam("hashes", expanding=True))
)
_SAME_TEXT = select(_ITEMS.c.id).where(_ITEMS.c.text_sha256 == bindparam("sha")).limit(1)
_SAME_IMAGE = select(_ITEMS.c.id).where(_ITEMS.c.image_sha256 == bindparam("sha")).limit(1)
_SOURCE_OK = (
    update(_SOURCES)
    .where(_SOURCES.c.id == bindparam("source_id"))
    .values(
        last_attempt_at=bindparam("now"),
        last_success_at=bindparam("now"),
        consecutive_failures=0,
        next_due_at=bindparam("due"),
        http_etag=bindparam("etag"),
        http_last_modified=bindparam("last_modified"),
        read_cursor=bindparam("cursor", type_=_SOURCES.c.read_cursor.type),
        read_remaining=bindparam("remaining"),
    )
)
_SOURCE_FAILED = (
    update(_SOURCES)
    .where(_SOURCES.c.id == bindparam("source_id"))
    .values(
        last_attempt_at=bindparam("now"),
        consecutive_failures=_SOURCES.c.consecutive_failures + 1,
        last_error=bindparam("error"),
        last_error_at=bindparam("now"),
        next_due_at=bindparam("due"),
    )
)
_RUN_ROW = insert(cast(Table, CrawlRun.__table__))


@dataclass
class SourceOutcome:
    source_id: int
    name: str
    ok: bool = True
    new: int = 0
    duplicate: int = 0
    failed: int = 0
    not_modified: bool = False
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, str]] = field(default_factory=list)  # problems that cost nothing
    failures: list[dict[str, str]] = field(default_factory=list)  # records not stored
    error: str | None = None
    # conditional-GET validators to keep for the next crawl (used when ok)
    etag: str | None = None
    last_modified: str | None = None
    # where the next crawl goes on, and how much is left (dumps and folders)
    cursor: dict[str, object] | None = None
    remaining: int | None = None

    def tally(self) -> Tally:
        """The counts so far, to go back to when a store is redone item by item."""
        return (
            self.new,
            self.duplicate,
            self.failed,
            Counter(self.reasons),
            list(self.examples),
            list(self.failures),
        )

    def restore(self, tally: Tally) -> None:
        (self.new, self.duplicate, self.failed, self.reasons, self.examples, self.failures) = tally

    def fail(self, where: str, reason: str, detail: str) -> None:
        """A record that was not stored."""
        self.failed += 1
        self.reasons[reason] += 1
        if len(self.failures) < FAILURES_KEPT:
            self.failures.append(_problem(where, reason, detail))

    def note(self, where: str, reason: str, detail: str) -> None:
        """A problem that did not cost the record (an image left out) or a source error."""
        self.reasons[reason] += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(_problem(where, reason, detail))


Tally = tuple[int, int, int, Counter[str], list[dict[str, str]], list[dict[str, str]]]


def _problem(where: str, reason: str, detail: str) -> dict[str, str]:
    return {"where": mask_text(where), "reason": reason, "detail": mask_text(detail)[:300]}


@dataclass
class ImageResult:
    data: bytes | None = None
    stored: StoredImage | None = None  # measured and validated (in a worker thread)
    error: FetchError | None = None
    decode_error: str | None = None


def url_key_sha256(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ItemWriter:
    """Dedup and insert, one transaction per item.

    All database work runs on one dedicated thread (``run``): writes stay serial, the
    phash index needs no lock, and the event loop keeps fetching meanwhile.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        layout: DataLayout,
        max_pixels: int,
        formats: Sequence[str],
        thumbnail_size: int = 0,
    ) -> None:
        self.factory = factory
        self.engine: Engine = factory.kw["bind"]
        self.layout = layout
        self.max_pixels = max_pixels
        self.formats = formats
        self.thumbnail_size = thumbnail_size
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="simmim-db")
        with session_scope(factory) as session:
            self.phashes = PhashIndex.load(session)

    async def run(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.thread, function, *args)

    def known_keys(self, keys: Sequence[str]) -> set[str]:
        hashes = {url_key_sha256(k): k for k in keys}
        found: set[str] = set()
        chunk = list(hashes)
        with self.engine.connect() as connection:  # a read: no ORM session needed
            for start in range(0, len(chunk), 500):
                rows = connection.scalars(_KNOWN_URLS, {"hashes": chunk[start : start + 500]})
                found.update(hashes[h] for h in rows if h is not None)
        return found

    def store(
        self,
        source: Source,
        found: Sequence[tuple[Candidate, ImageResult]],
        outcome: SourceOutcome,
        started: datetime,
        now: datetime,
    ) -> None:
        """A source's new items, its health and its run row in one transaction: the items
        and the cursor that says they were read land together (after a crash the next
        crawl reads the same records again; nothing is skipped). Should the database refuse
        one item (the same URL stored by another process meanwhile), the source is stored
        again one item per transaction, so a bad record never costs the others."""
        before = outcome.tally()
        added: list[int] = []

        def write(session: Session, candidate: Candidate, image: ImageResult) -> None:
            """Database errors go up (the transaction is lost); any other surprise is
            this record's alone: noted, and the crawl goes on."""
            try:
                self._write(session, source.id, candidate, image, outcome, added)
            except SQLAlchemyError:
                raise
            except Exception as exc:
                log.exception("could not store %s", candidate.where)
                outcome.fail(candidate.where, "store error", f"{type(exc).__name__}: {exc}")

        try:
            with session_scope(self.factory) as session:
                for candidate, image in found:
                    write(session, candidate, image)
                _record(session, source, outcome, started, now)
            return
        except SQLAlchemyError as exc:
            log.info("source %s: storing item by item (%s)", outcome.name, type(exc).__name__)
        if added:  # pictures of items that were rolled back
            with session_scope(self.factory) as session:
                self.phashes = PhashIndex.load(session)
        outcome.restore(before)
        for candidate, image in found:
            try:
                with session_scope(self.factory) as session:
                    write(session, candidate, image)
            except IntegrityError:  # the same URL arrived through another source meanwhile
                outcome.duplicate += 1
            except SQLAlchemyError as exc:
                outcome.fail(candidate.where, "store error", f"{type(exc).__name__}: {exc}")
        with session_scope(self.factory) as session:
            _record(session, source, outcome, started, now)

    def _write(
        self,
        session: Session,
        source_id: int,
        candidate: Candidate,
        image: ImageResult,
        outcome: SourceOutcome,
        added: list[int],
    ) -> None:
        candidate.title, candidate.text = clean_text(candidate.title), clean_text(candidate.text)
        candidate.author, candidate.url = clean_text(candidate.author), clean_text(candidate.url)
        candidate.external_id, candidate.key = (
            clean_text(candidate.external_id),
            clean_text(candidate.key) or "",
        )
        text_hash = text_sha256(candidate.title, candidate.text)
        item = Item(
            source_id=source_id,
            external_id=(candidate.external_id or "")[:1024] or None,
            url=candidate.url,
            canonical_url=candidate.key,
            url_sha256=url_key_sha256(candidate.key),
            title=candidate.title,
            text=candidate.text,
            text_sha256=text_hash,
            author=(candidate.author or "")[:512] or None,
            extra=candidate.extra or None,
            image_url=candidate.image_url
            or (str(candidate.image_path) if candidate.image_path else None),
            published_at=candidate.published_at,
        )
        problems = []
        if image.error is not None:
            problems.append(clean_text(f"image: {image.error.reason}: {image.error.detail}") or "")
            outcome.note(candidate.where, f"image {image.error.reason}", image.error.detail)
        stored = image.stored
        if image.decode_error is not None:
            reason = "image too large" if "too large" in image.decode_error else "corrupt image"
            problems.append(f"image: {image.decode_error}")
            outcome.note(candidate.where, reason, image.decode_error)
        has_text = bool((candidate.title or "").strip() or (candidate.text or "").strip())
        connection = session.connection()
        if text_hash and connection.scalar(_SAME_TEXT, {"sha": text_hash}):
            outcome.duplicate += 1
            return
        same = None
        if stored is not None:
            same = connection.scalar(_SAME_IMAGE, {"sha": stored.sha256})
            if same is not None and not has_text:
                outcome.duplicate += 1  # the very same picture, nothing else
                return
            near = self.phashes.nearest(stored.phash) if same is None else None
            if near is not None:  # link, don't store the near-copy again
                item.image_duplicate_of = near[0]
                item.image_sha256 = near[1]
            else:
                write_image(
                    self.layout,
                    image.data or b"",
                    stored.sha256,
                    thumbnail=stored.thumbnail,
                    thumbnail_size=self.thumbnail_size,
                )
                item.image_sha256 = stored.sha256
            item.image_bytes, item.image_width, item.image_height = (
                stored.size_bytes,
                stored.width,
                stored.height,
            )
            item.image_phash = stored.phash
        if not has_text and item.image_sha256 is None:
            item.status = ItemStatus.FAILED  # nothing left to index
            if not problems:
                problems.append("nothing to index: no title, text or image")
                outcome.note(candidate.where, "nothing to index", problems[0])
        if problems:
            item.error = "; ".join(problems)
        session.add(item)  # last: everything above that can fail has run
        session.flush()
        if stored is not None and item.image_duplicate_of is None and same is None:
            self.phashes.add(item.id, stored.sha256, stored.phash)  # a picture new to us
            added.append(item.id)
        if item.status is ItemStatus.FAILED:
            outcome.failed += 1
        else:
            outcome.new += 1


def _load_image(candidate: Candidate, max_bytes: int) -> bytes:
    assert candidate.image_path is not None  # readers confined it to the source's roots
    return read_capped(candidate.image_path, max_bytes)


def _inspected(data: bytes, writer: ItemWriter) -> ImageResult:
    try:
        stored = inspect_image(
            data,
            max_pixels=writer.max_pixels,
            formats=writer.formats,
            thumbnail_size=writer.thumbnail_size,
        )
        return ImageResult(data, stored=stored)
    except ImageDecodeError as exc:
        return ImageResult(data, decode_error=str(exc))


async def _image_for(candidate: Candidate, fetcher: Fetcher, writer: ItemWriter) -> ImageResult:
    """Download (or read) and validate the candidate's image; decoding runs in a thread."""
    try:
        if candidate.image_error is not None:
            return ImageResult(error=candidate.image_error)
        if candidate.image_url:
            data = (await fetcher.get(candidate.image_url, accept=IMAGE_TYPES)).content
        elif candidate.image_path:
            data = await asyncio.to_thread(_load_image, candidate, fetcher.settings.max_bytes)
        else:
            return ImageResult()
    except FetchError as exc:
        return ImageResult(error=exc)
    except OSError as exc:
        return ImageResult(error=FetchError("unreadable file", f"{candidate.image_path}: {exc}"))
    return await asyncio.to_thread(_inspected, data, writer)


async def crawl_source(
    source: Source, fetcher: Fetcher, writer: ItemWriter, limit: int
) -> tuple[SourceOutcome, list[tuple[Candidate, ImageResult]]]:
    """Read the source, drop known URLs, fetch the images: (outcome so far, what to store)."""
    outcome = SourceOutcome(source.id, source.name)
    try:
        result = await READERS[source.kind](source, fetcher, limit)
    except FetchError as exc:
        outcome.ok, outcome.error = False, mask_text(f"{exc.reason}: {exc.detail}")
        outcome.note(source.location, exc.reason, exc.detail)
        return outcome, []
    outcome.etag, outcome.last_modified = result.etag, result.last_modified
    outcome.cursor, outcome.remaining = result.cursor, result.remaining
    outcome.not_modified = result.not_modified
    for where, reason, detail in result.notes:
        log.warning("%s: %s", source.name, detail)
        outcome.note(where, reason, detail)
    candidates: list[Candidate] = []
    for record in result.records:
        if isinstance(record, Rejected):
            outcome.fail(record.where, record.reason, record.detail)
        else:
            candidates.append(record)
    # Known URLs are skipped before anything is downloaded for them.
    known = await writer.run(writer.known_keys, [c.key for c in candidates])
    fresh: list[Candidate] = []
    seen: set[str] = set()
    for candidate in candidates:
        if candidate.key in known or candidate.key in seen:
            outcome.duplicate += 1
        else:
            seen.add(candidate.key)
            fresh.append(candidate)
    images = await asyncio.gather(*(_image_for(c, fetcher, writer) for c in fresh))
    return outcome, list(zip(fresh, images, strict=True))


def _record(
    session: Session, source: Source, outcome: SourceOutcome, started: datetime, now: datetime
) -> None:
    """The source's health and its run row, in the transaction that stores its items."""
    connection = session.connection()
    if outcome.ok:
        changed = connection.execute(
            _SOURCE_OK,
            {
                "source_id": source.id,
                "now": now,
                "due": now + timedelta(seconds=min(source.every_s, MAX_EVERY_S)),
                "etag": outcome.etag,
                "last_modified": outcome.last_modified,
                "cursor": outcome.cursor,
                "remaining": outcome.remaining,
            },
        )
    else:
        failures = source.consecutive_failures + 1  # as read when the crawl began
        backoff = timedelta(seconds=min(source.every_s, MAX_EVERY_S) * 2 ** min(failures, 10))
        changed = connection.execute(
            _SOURCE_FAILED,
            {
                "source_id": source.id,
                "now": now,
                "error": outcome.error,
                "due": now + min(backoff, MAX_BACKOFF),
            },
        )
    if not changed.rowcount:
        return  # removed while crawling
    connection.execute(
        _RUN_ROW,
        {
            "source_id": source.id,
            "started_at": started,
            "finished_at": now,
            "ok": outcome.ok,
            "new": outcome.new,
            "duplicate": outcome.duplicate,
            "failed": outcome.failed,
            "reasons": {
                "counts": dict(outcome.reasons),
                "examples": outcome.examples,
                "failures": outcome.failures,
            },
            "error": outcome.error,
        },
    )


def select_sources(
    session: Session, *, source_ids: Sequence[int] | None, due_only: bool, now: datetime
) -> list[Source]:
    chosen = Source.id.in_(source_ids) if source_ids else Source.enabled
    sources = list(session.scalars(select(Source).where(chosen).order_by(Source.id)))
    if due_only:
        sources = [s for s in sources if s.next_due_at is None or s.next_due_at <= now]
    return sources


async def crawl_async(
    settings: Settings,
    engine: Engine,
    *,
    source_ids: Sequence[int] | None = None,
    due_only: bool = False,
    now: Clock = utcnow,
    on_done: Callable[[SourceOutcome], None] | None = None,
) -> list[SourceOutcome]:
    factory = session_factory(engine)
    with session_scope(factory) as session:
        sources = select_sources(session, source_ids=source_ids, due_only=due_only, now=now())
    layout = DataLayout(settings.data_dir)
    layout.create()
    writer = ItemWriter(
        factory,
        layout,
        settings.max_image_pixels,
        settings.image_formats,
        thumbnail_size=settings.thumbnail_size,
    )
    limit = settings.crawler.max_items_per_source

    async with Fetcher(settings.crawler) as fetcher:

        async def one(source: Source) -> SourceOutcome:
            started = now()
            found: list[tuple[Candidate, ImageResult]] = []
            try:
                outcome, found = await crawl_source(source, fetcher, writer, limit)
            except Exception as exc:  # a bug in one reader must not stop the others
                log.exception("crawl of source %s failed", source.name)
                outcome = SourceOutcome(
                    source.id, source.name, ok=False, error=f"internal error: {exc}"
                )
            await writer.run(writer.store, source, found, outcome, started, now())
            if on_done is not None:
                on_done(outcome)
            return outcome

        try:
            return list(await asyncio.gather(*(one(s) for s in sources)))
        finally:
            writer.thread.shutdown(wait=True)


def crawl(
    settings: Settings,
    engine: Engine,
    *,
    source_ids: Sequence[int] | None = None,
    due_only: bool = False,
    on_done: Callable[[SourceOutcome], None] | None = None,
    side_by_side: bool = False,
) -> list[SourceOutcome]:
    """Synchronous entry point for the CLI and the scheduler, which hold the crawl lock: so
    any temp file in the image store is a leftover of an interrupted crawl, removed here.
    Workers crawl sources ``side_by_side``: only temp files a day old are leftovers then."""
    images = DataLayout(settings.data_dir).images
    swept = sweep_temp_files(images, older_than_s=86_400.0 if side_by_side else 0.0)
    if swept:
        log.info("images: removed %d temp file(s) of an interrupted crawl", swept)
    return asyncio.run(
        crawl_async(settings, engine, source_ids=source_ids, due_only=due_only, on_done=on_done)
    )


MAX_DRAIN_ROUNDS = 10_000  # a guard: a source whose "left" never shrinks stops the drain


def crawl_until_done(
    settings: Settings,
    engine: Engine,
    *,
    source_ids: Sequence[int] | None = None,
    due_only: bool = False,
    on_round: Callable[[list[SourceOutcome]], None] | None = None,
) -> list[SourceOutcome]:
    """Crawl, then crawl again the sources that have records left (a dump, a folder, a
    long feed) until none has: a big file loads in one command, one page of records in
    memory at a time. Returns one outcome per source, its counts summed over the rounds;
    a source that fails, or whose backlog stops shrinking, is not crawled again."""
    outcomes = crawl(settings, engine, source_ids=source_ids, due_only=due_only)
    total = {o.source_id: o for o in outcomes}
    if on_round:
        on_round(outcomes)
    for _ in range(MAX_DRAIN_ROUNDS):
        again = [o.source_id for o in outcomes if o.ok and o.remaining]
        if not again:
            break
        before = {o.source_id: o.remaining for o in outcomes}
        outcomes = crawl(settings, engine, source_ids=again)
        for o in outcomes:
            _add_round(total[o.source_id], o)
        if on_round:
            on_round(outcomes)
        outcomes = [
            o for o in outcomes if o.remaining is None or o.remaining < (before[o.source_id] or 0)
        ]
    return list(total.values())


def _add_round(total: SourceOutcome, later: SourceOutcome) -> None:
    total.new += later.new
    total.duplicate += later.duplicate
    total.failed += later.failed
    total.reasons.update(later.reasons)
    total.examples = (total.examples + later.examples)[:EXAMPLES_KEPT]
    total.failures = (total.failures + later.failures)[:FAILURES_KEPT]
    total.ok, total.error = later.ok, later.error
    total.remaining, total.cursor = later.remaining, later.cursor
