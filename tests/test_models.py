from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from simmim.db import session_factory, session_scope
from simmim.models import Item, ItemStatus, Source, SourceKind


def _source(name: str = "wire") -> Source:
    return Source(name=name, kind=SourceKind.RSS, location="https://example.org/feed.xml")


def test_timestamps_come_back_timezone_aware_in_utc(engine: Engine) -> None:
    factory = session_factory(engine)
    paris = timezone(timedelta(hours=1))
    published = datetime(2026, 3, 1, 9, 30, tzinfo=paris)
    with session_scope(factory) as session:
        source = _source()
        session.add(source)
        session.add(Item(source=source, title="t", published_at=published))
    with session_scope(factory) as session:
        item = session.scalars(select(Item)).one()
        assert item.published_at == published  # same instant
        assert item.published_at is not None and item.published_at.tzinfo is not None
        assert item.published_at.utcoffset() == timedelta(0)
        assert item.crawled_at.tzinfo is not None  # default filled, aware
        assert item.status is ItemStatus.PENDING
        assert item.source.created_at.tzinfo is not None


def test_naive_datetime_is_refused(engine: Engine) -> None:
    factory = session_factory(engine)
    with pytest.raises(StatementError, match="naive datetime"), session_scope(factory) as session:
        session.add(
            Source(name="n", kind=SourceKind.RSS, location="x", created_at=datetime(2026, 1, 1))
        )


def test_deleting_a_source_deletes_its_items_in_the_database(engine: Engine) -> None:
    factory = session_factory(engine)
    with session_scope(factory) as session:
        keep, drop = _source("keep"), _source("drop")
        session.add_all([keep, drop])
        session.add_all([Item(source=keep, title="a"), Item(source=drop, title="b")])
    with engine.begin() as connection:  # ON DELETE CASCADE, not just the ORM
        connection.execute(text("DELETE FROM indexer_source WHERE name = 'drop'"))
    with session_scope(factory) as session:
        assert [item.title for item in session.scalars(select(Item))] == ["a"]


def test_canonical_url_hash_is_unique(engine: Engine) -> None:
    factory = session_factory(engine)
    with pytest.raises(IntegrityError), session_scope(factory) as session:
        source = _source()
        session.add_all(
            [Item(source=source, url_sha256="ab" * 32), Item(source=source, url_sha256="ab" * 32)]
        )
    with session_scope(factory) as session:  # nothing half-written
        assert session.scalars(select(Item)).all() == []


def test_status_outside_the_enum_is_refused_by_the_database(engine: Engine) -> None:
    factory = session_factory(engine)
    with session_scope(factory) as session:
        session.add(_source())
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO indexer_item (source_id, crawled_at, status) VALUES (1, :now, 'bogus')"
            ),
            {"now": datetime.now(UTC)},
        )
