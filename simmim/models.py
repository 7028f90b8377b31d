"""Core tables: where items come from (sources) and what was brought in (items).

Later parts add their own tables in their own migrations; alembic's env imports every models
module, so migrations see the whole schema without this floor importing the layers above it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from simmim.clock import utcnow
from simmim.db import Base, UTCDateTime


class SourceKind(enum.StrEnum):
    RSS = "rss"
    PAGE = "page"
    FOLDER = "folder"
    JSONL = "jsonl"


class ItemStatus(enum.StrEnum):
    PENDING = "pending"  # stored, not yet in the indexes
    INDEXED = "indexed"  # its vectors are durably saved in every index it belongs to
    FAILED = "failed"  # kept for the record; error says why


def str_enum(cls: type[enum.StrEnum], length: int) -> Enum:
    # VARCHAR + CHECK on every backend, so adding a value never needs ALTER TYPE.
    return Enum(
        cls,
        native_enum=False,
        length=length,
        create_constraint=True,
        name=cls.__name__.lower(),
        values_callable=lambda members: [member.value for member in members],
    )


class Space(enum.StrEnum):
    """The three vector spaces; each has a bit in ``Item.indexed_spaces``."""

    IMAGE = "image"  # e_v of items with a picture
    TEXT = "text"  # e_t of items with text
    FUSED = "fused"  # every item's fused vector

    @property
    def bit(self) -> int:
        return _SPACE_BITS[self]


_SPACE_BITS = {Space.IMAGE: 1, Space.TEXT: 2, Space.FUSED: 4}
SPACES: tuple[Space, ...] = tuple(Space)


TEXT_MAX_CHARS = 2000  # the tokenizer keeps ~77 tokens; no need to BPE or score a whole article


def item_text(title: str | None, body: str | None) -> str | None:
    """Title and lead as one string: what the text tower and the scorers see of an item."""
    parts = [p.strip() for p in (title, body) if p and p.strip()]
    return ". ".join(parts)[:TEXT_MAX_CHARS] if parts else None


MAX_EVERY_S = 366 * 86400  # a source is crawled at least once a year (a due time must exist)


class Source(Base):
    __tablename__ = "indexer_source"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[SourceKind] = mapped_column(str_enum(SourceKind, 16))
    location: Mapped[str] = mapped_column(Text)
    every_s: Mapped[int] = mapped_column(Integer, default=900)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Health: what a user needs to see to know a source is working.
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    # Conditional GET state, kept per source so a restart does not refetch everything.
    http_etag: Mapped[str | None] = mapped_column(String(512))
    http_last_modified: Mapped[str | None] = mapped_column(String(128))

    # Where the next crawl of a dump or folder goes on (reader-defined; None: the start),
    # and how many records were left after the last crawl's cap (None: unknown or none).
    read_cursor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    read_remaining: Mapped[int | None] = mapped_column(Integer)

    items: Mapped[list[Item]] = relationship(
        back_populates="source", cascade="all, delete-orphan", passive_deletes=True
    )


class Item(Base):
    """One crawled post, article or image, with its text and (optional) image reference."""

    __tablename__ = "indexer_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Indexed through ix_indexer_item_source_published (leftmost column).
    source_id: Mapped[int] = mapped_column(ForeignKey("indexer_source.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(1024))  # feed guid, post id, path
    url: Mapped[str | None] = mapped_column(Text)
    canonical_url: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of canonical_url: unique, and short enough for any backend's index.
    url_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)

    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    text_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    author: Mapped[str | None] = mapped_column(String(512))
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # e.g. engagement counts

    # The image lives once under <data dir>/images/, addressed by its SHA-256.
    image_url: Mapped[str | None] = mapped_column(Text)
    image_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    image_bytes: Mapped[int | None] = mapped_column(Integer)
    image_width: Mapped[int | None] = mapped_column(Integer)
    image_height: Mapped[int | None] = mapped_column(Integer)
    image_phash: Mapped[str | None] = mapped_column(String(32), index=True)

    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    crawled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    status: Mapped[ItemStatus] = mapped_column(
        str_enum(ItemStatus, 16), default=ItemStatus.PENDING, index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    # Which indexes hold this item's vectors (Space.bit); reconcile compares it with them.
    indexed_spaces: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    source: Mapped[Source] = relationship(back_populates="items")
    # Set when this item's image is a near-duplicate (perceptual hash) of an earlier item's.
    image_duplicate_of: Mapped[int | None] = mapped_column(
        ForeignKey("indexer_item.id", ondelete="SET NULL")
    )

    __table_args__ = (Index("ix_indexer_item_source_published", "source_id", "published_at"),)


class CrawlRun(Base):
    """One crawl of one source: what came of it, kept for the health views and the dashboard."""

    __tablename__ = "indexer_crawl_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("indexer_source.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    new: Mapped[int] = mapped_column(Integer, default=0)
    duplicate: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    # {"counts": {reason: n}, "examples": a few problems that cost nothing,
    #  "failures": the records not stored [{"where": url or "file line N", "reason", "detail"}]}
    reasons: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)  # why the source as a whole failed

    __table_args__ = (Index("ix_indexer_crawl_run_source_started", "source_id", "started_at"),)


class StagedVectors(Base):
    """An item's vectors, encoded by a worker and waiting for the one index writer.

    Encoding is the costly part and runs on every worker at once; adding to the index and
    saving it is one writer's job. The row goes in the same transaction that releases the
    item's claim, and leaves in the one that marks the item indexed.
    """

    __tablename__ = "indexer_staged_vectors"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("indexer_item.id", ondelete="CASCADE"), primary_key=True
    )
    fingerprint: Mapped[str] = mapped_column(String(64))  # the encoder's: others are dropped
    indexed_spaces: Mapped[int] = mapped_column(Integer)  # which of the vectors below exist
    error: Mapped[str | None] = mapped_column(Text)  # e.g. an unreadable image (text kept)
    image: Mapped[bytes | None] = mapped_column(LargeBinary)  # float32, the encoder's dim
    text: Mapped[bytes | None] = mapped_column(LargeBinary)
    fused: Mapped[bytes | None] = mapped_column(LargeBinary)
    staged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token for the HTTP API: only its SHA-256 is kept; the secret is shown once."""

    __tablename__ = "app_api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    scope: Mapped[str] = mapped_column(String(8))  # read | admin
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to recognise it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
