"""Builders for crawl tests: settings, sources, feeds, pictures as bytes."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from sqlalchemy import Engine, func, select

from indexer.crawl import SourceOutcome, crawl
from simmim.db import session_factory, session_scope
from simmim.models import Item, Source, SourceKind
from simmim.settings import Settings
from tests.encoder_fixtures import picture


def crawl_settings(data_dir: Path, **crawler: object) -> Settings:
    return Settings(
        data_dir=data_dir,
        crawler={  # type: ignore[arg-type]
            "allow_loopback": True,
            "per_host_interval_s": 0,
            "backoff_s": 0.01,
            "retries": 2,
            "read_timeout_s": 1,
            "connect_timeout_s": 1,
            "total_timeout_s": 5,
            **crawler,
        },
    )


def add(engine: Engine, location: str, kind: SourceKind, name: str | None = None) -> int:
    with session_scope(session_factory(engine)) as session:
        source = Source(name=name or location[-60:], kind=kind, location=location)
        session.add(source)
        session.flush()
        return source.id


def run(settings: Settings, engine: Engine, *ids: int) -> dict[int, SourceOutcome]:
    return {o.source_id: o for o in crawl(settings, engine, source_ids=list(ids) or None)}


def items(engine: Engine) -> list[Item]:
    with session_scope(session_factory(engine)) as session:
        return list(session.scalars(select(Item).order_by(Item.id)))


def count(engine: Engine) -> int:
    with session_scope(session_factory(engine)) as session:
        return int(session.scalar(select(func.count(Item.id))) or 0)


def source(engine: Engine, source_id: int) -> Source:
    with session_scope(session_factory(engine)) as session:
        found = session.get(Source, source_id)
        assert found is not None
        return found


def jpeg(seed: int, size: tuple[int, int] = (120, 90), quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    picture(seed, size).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_bomb(side: int = 4000) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (side, side)).save(buffer, format="PNG")  # tiny file, huge picture
    return buffer.getvalue()


def rss(entries: list[dict[str, str]], *, encoding: str = "utf-8") -> bytes:
    body = []
    for e in entries:
        extra = ""
        if "enclosure" in e:
            extra += f'<enclosure url="{e["enclosure"]}" type="image/jpeg" length="1"/>'
        if "media" in e:
            extra += f'<media:content url="{e["media"]}" medium="image"/>'
        body.append(
            f"<item><title>{e['title']}</title><link>{e['link']}</link>"
            f"<description>{e.get('summary', '')}</description>"
            f"<pubDate>{e.get('date', 'Tue, 03 Mar 2026 10:00:00 GMT')}</pubDate>{extra}</item>"
        )
    xml = (
        f'<?xml version="1.0" encoding="{encoding}"?>'
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Wire</title>'
        + "".join(body)
        + "</channel></rss>"
    )
    return xml.encode(encoding)
