"""Crawling against a real local HTTP server: each source kind, dedup, and bad input."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine, select

from simmim.models import Item, ItemStatus, SourceKind
from simmim.paths import DataLayout
from tests.crawl_helpers import add, count, crawl_settings, items, jpeg, png_bomb, rss, run, source
from tests.http_server import LocalServer, Reply

JPEG = {"Content-Type": "image/jpeg"}
XML = {"Content-Type": "application/rss+xml"}
HTML = {"Content-Type": "text/html; charset=utf-8"}


@pytest.fixture
def db(engine: Engine) -> Engine:
    """Every crawl test runs on SQLite and on PostgreSQL."""
    return engine


def test_rss_feed_items_images_and_conditional_get(
    http_server: LocalServer, db: Engine, tmp_path: Path
) -> None:
    s = http_server
    feed = rss(
        [
            {
                "title": "Acme beats estimates",
                "link": s.url("/a?utm_source=x"),
                "summary": "<p>Profit <b>rose</b> 12%</p>",
                "enclosure": s.url("/a.jpg"),
            },
            {
                "title": "Bolt cuts guidance",
                "link": s.url("/b"),
                "summary": "Shares fell",
                "media": s.url("/b.jpg"),
            },
            {"title": "Crane files for IPO", "link": s.url("/c"), "summary": "No picture here"},
        ]
    )

    def feed_route(headers: dict[str, str], path: str) -> Reply:
        if headers.get("if-none-match") == '"v1"':
            return Reply(304)
        return Reply(200, feed, {**XML, "ETag": '"v1"'})

    s.routes.update(
        {
            "/feed.xml": feed_route,
            "/a.jpg": Reply(200, jpeg(1), JPEG),
            "/b.jpg": Reply(200, jpeg(2), JPEG),
        }
    )
    settings = crawl_settings(tmp_path / "data")
    sid = add(db, s.url("/feed.xml"), SourceKind.RSS)

    outcome = run(settings, db)[sid]
    assert (outcome.ok, outcome.new, outcome.duplicate, outcome.failed) == (True, 3, 0, 0)
    stored = items(db)
    assert [i.title for i in stored] == [
        "Acme beats estimates",
        "Bolt cuts guidance",
        "Crane files for IPO",
    ]
    assert stored[0].text == "Profit rose 12%"
    assert stored[0].canonical_url == s.url("/a")  # utm_source dropped
    assert stored[0].published_at == datetime(2026, 3, 3, 10, tzinfo=UTC)
    for item in stored[:2]:
        assert (
            item.image_sha256
            and DataLayout(settings.data_dir).image_path(item.image_sha256).is_file()
        )
        assert (item.image_width, item.image_height) == (120, 90)
    assert stored[2].image_sha256 is None and stored[2].status is ItemStatus.PENDING
    assert source(db, sid).http_etag == '"v1"'

    again = run(settings, db)[sid]
    assert again.not_modified and again.new == 0
    assert count(db) == 3
    assert s.count("/a.jpg") == 1  # nothing downloaded twice


def test_article_page_text_title_and_lead_image(
    http_server: LocalServer, db: Engine, tmp_path: Path
) -> None:
    s = http_server
    body = " ".join(
        ["The central bank held rates steady on Wednesday, citing cooling inflation."] * 6
    )
    page = (
        '<html><head><title>Site | Fed holds</title><meta property="og:image" content="/lead.jpg"></head>'
        f"<body><nav>Home News</nav><article><h1>Fed holds rates</h1><p>{body}</p><p>{body}</p></article>"
        '<img src="/icon.png" width="16" height="16"></body></html>'
    )
    s.routes.update(
        {"/story": Reply(200, page.encode(), HTML), "/lead.jpg": Reply(200, jpeg(3), JPEG)}
    )
    sid = add(db, s.url("/story"), SourceKind.PAGE)
    outcome = run(crawl_settings(tmp_path / "data"), db)[sid]
    assert outcome.new == 1, outcome
    item = items(db)[0]
    assert item.title == "Fed holds rates"
    assert item.text and "cooling inflation" in item.text and "Home News" not in item.text
    assert item.image_url == s.url("/lead.jpg") and item.image_sha256


def test_lead_image_falls_back_to_first_large_img() -> None:
    from indexer.sources.page import lead_image

    html = (
        '<img src="/logo.png" width="40" height="40"><img src="big.jpg" width="800" height="400">'
    )
    assert lead_image(html, "http://x.org/a/b") == "http://x.org/a/big.jpg"
    assert (
        lead_image('<meta name="twitter:image" content="http://cdn/x.jpg">', "http://x.org")
        == "http://cdn/x.jpg"
    )
    assert lead_image("<p>no pictures</p>", "http://x.org") is None


def test_image_folder_with_sidecars_exif_and_a_corrupt_file(db: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    exif = Image.Exif()
    exif[306] = "2024:01:02 03:04:05"
    Image.open(__import__("io").BytesIO(jpeg(4))).save(folder / "chart.jpg", exif=exif)
    (folder / "chart.txt").write_text("Oil prices spike after supply cut", encoding="utf-8")
    (folder / "sub" / "desk.png").write_bytes(Path(folder / "chart.jpg").read_bytes())  # same bytes
    (folder / "sub" / "desk.json").write_text(
        json.dumps({"title": "Trading desk", "author": "ann"}), encoding="utf-8"
    )
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.md").write_text("ignored", encoding="utf-8")
    sid = add(db, str(folder), SourceKind.FOLDER)
    outcome = run(crawl_settings(tmp_path / "data"), db)[sid]
    by_id = {i.external_id: i for i in items(db)}
    assert set(by_id) == {"chart.jpg", "sub/desk.png", "broken.jpg"}
    assert by_id["chart.jpg"].text == "Oil prices spike after supply cut"
    assert by_id["chart.jpg"].published_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert by_id["sub/desk.png"].title == "Trading desk" and by_id["sub/desk.png"].author == "ann"
    assert by_id["sub/desk.png"].image_sha256 == by_id["chart.jpg"].image_sha256  # stored once
    assert by_id["broken.jpg"].status is ItemStatus.FAILED and "not a readable image" in (
        by_id["broken.jpg"].error or ""
    )
    assert outcome.new == 2 and outcome.failed == 1 and outcome.reasons["corrupt image"] == 1


def test_jsonl_dump_fields_and_bad_lines(
    http_server: LocalServer, db: Engine, tmp_path: Path
) -> None:
    s = http_server
    s.routes["/p.jpg"] = Reply(200, jpeg(5), JPEG)
    (tmp_path / "local.jpg").write_bytes(jpeg(6))
    lines = [
        json.dumps(
            {
                "id": 1,
                "text": "$ACME to the moon after earnings beat",
                "author": "trader1",
                "time": "2026-03-01T12:00:00Z",
                "url": "https://social.example/p/1",
                "likes": 10,
                "shares": 2,
                "image": s.url("/p.jpg"),
            }
        ),
        json.dumps({"id": 2, "text": "Chart of the day", "time": 1772400000, "image": "local.jpg"}),
        "{not json",
        json.dumps({"id": 4, "author": "nobody"}),
        json.dumps({"id": 5, "text": "when?", "time": "yesterday"}),
        "",
    ]
    dump = tmp_path / "posts.jsonl"
    dump.write_text("\n".join(lines), encoding="utf-8")
    sid = add(db, str(dump), SourceKind.JSONL)
    outcome = run(crawl_settings(tmp_path / "data"), db)[sid]
    assert (outcome.new, outcome.failed) == (2, 3)
    assert dict(outcome.reasons) == {"malformed JSON": 1, "empty post": 1, "bad time": 1}
    first, second = items(db)
    assert first.author == "trader1" and first.extra == {"engagement": {"likes": 10, "shares": 2}}
    assert first.url == "https://social.example/p/1" and first.image_sha256
    assert first.published_at == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert second.image_sha256 and second.published_at == datetime.fromtimestamp(1772400000, UTC)
    assert run(crawl_settings(tmp_path / "data"), db)[sid].duplicate == 2  # ids make lines stable


def test_dedup_by_url_text_image_and_near_duplicate_image(
    http_server: LocalServer, db: Engine, tmp_path: Path
) -> None:
    s = http_server
    original = jpeg(7, (200, 150), quality=95)
    near = jpeg(7, (200, 150), quality=60)  # same picture, re-encoded: other bytes, same look
    assert original != near
    story = "Regional lender shares slump as deposit outflows accelerate"
    s.routes.update(
        {
            "/f1.xml": Reply(
                200,
                rss(
                    [
                        {"title": story, "link": s.url("/s1"), "summary": "details"},
                        {
                            "title": "Same link again",
                            "link": s.url("/s1?utm_medium=rss#top"),
                            "summary": "x",
                        },
                        {
                            "title": "Picture A",
                            "link": s.url("/pa"),
                            "enclosure": s.url("/orig.jpg"),
                        },
                    ]
                ),
                XML,
            ),
            "/f2.xml": Reply(
                200,
                rss(
                    [
                        {"title": story, "link": s.url("/syndicated"), "summary": "details"},
                        {
                            "title": "Picture B",
                            "link": s.url("/pb"),
                            "enclosure": s.url("/near.jpg"),
                        },
                    ]
                ),
                XML,
            ),
            "/orig.jpg": Reply(200, original, JPEG),
            "/near.jpg": Reply(200, near, JPEG),
        }
    )
    settings = crawl_settings(tmp_path / "data")
    first = add(db, s.url("/f1.xml"), SourceKind.RSS, "one")
    run(settings, db, first)
    second = add(db, s.url("/f2.xml"), SourceKind.RSS, "two")
    outcome = run(settings, db, second)[second]
    assert outcome.new == 1 and outcome.duplicate == 1  # the syndicated story is a text duplicate
    stored = {i.title: i for i in items(db)}
    assert set(stored) == {story, "Picture A", "Picture B"}  # the utm/fragment link was one URL
    a, b = stored["Picture A"], stored["Picture B"]
    assert b.image_duplicate_of == a.id and b.image_sha256 == a.image_sha256
    files = [p for p in DataLayout(settings.data_dir).images.rglob("*") if p.is_file()]
    assert len(files) == 1


def test_malformed_feed_fails_the_source_and_keeps_what_was_stored(
    http_server: LocalServer, db: Engine, tmp_path: Path
) -> None:
    s = http_server
    s.routes["/feed.xml"] = [
        Reply(200, rss([{"title": "Kept item title here", "link": s.url("/k")}]), XML),
        Reply(200, b"<rss><channel><item><title>broken", XML),
    ]
    settings = crawl_settings(tmp_path / "data")
    sid = add(db, s.url("/feed.xml"), SourceKind.RSS)
    assert run(settings, db)[sid].new == 1
    outcome = run(settings, db)[sid]
    assert not outcome.ok and "malformed feed" in (outcome.error or "")
    assert [i.title for i in items(db)] == ["Kept item title here"]
    health = source(db, sid)
    assert health.consecutive_failures == 1 and health.last_error and health.last_success_at
    assert health.next_due_at and health.last_error_at and health.next_due_at > health.last_error_at


def test_bad_encodings_are_decoded(http_server: LocalServer, db: Engine, tmp_path: Path) -> None:
    s = http_server
    s.routes["/latin.xml"] = Reply(
        200,
        rss([{"title": "Café prices soar", "link": s.url("/l")}], encoding="iso-8859-1"),
        {"Content-Type": "text/xml"},
    )
    page = (
        "<html><head><title>Crème brûlée index</title></head><body><article><p>"
        + "Résumé of the market. " * 20
        + "</p></article></body></html>"
    )
    s.routes["/cp1252"] = Reply(
        200, page.encode("cp1252"), {"Content-Type": "text/html; charset=windows-1252"}
    )
    (tmp_path / "bad.jsonl").write_bytes(b'{"id": 1, "text": "caf\xe9 au lait"}\n')
    ids = [
        add(db, s.url("/latin.xml"), SourceKind.RSS),
        add(db, s.url("/cp1252"), SourceKind.PAGE),
        add(db, str(tmp_path / "bad.jsonl"), SourceKind.JSONL),
    ]
    outcomes = run(crawl_settings(tmp_path / "data"), db, *ids)
    assert all(o.ok and o.new == 1 for o in outcomes.values()), outcomes
    texts = {i.title or i.text for i in items(db)}
    assert {"Café prices soar", "Crème brûlée index", "café au lait"} <= texts


def test_bad_images_are_recorded_and_the_item_kept(
    http_server: LocalServer, db: Engine, tmp_path: Path
) -> None:
    s = http_server
    s.routes.update(
        {
            "/f.xml": Reply(
                200,
                rss(
                    [
                        {
                            "title": "Bomb attached here",
                            "link": s.url("/1"),
                            "enclosure": s.url("/bomb.png"),
                        },
                        {
                            "title": "Corrupt attached here",
                            "link": s.url("/2"),
                            "enclosure": s.url("/bad.jpg"),
                        },
                        {
                            "title": "Html not image here",
                            "link": s.url("/3"),
                            "enclosure": s.url("/page"),
                        },
                        {
                            "title": "Missing image here",
                            "link": s.url("/4"),
                            "enclosure": s.url("/gone.jpg"),
                        },
                    ]
                ),
                XML,
            ),
            "/bomb.png": Reply(200, png_bomb(), {"Content-Type": "image/png"}),
            "/bad.jpg": Reply(200, b"GIF89a garbage", JPEG),
            "/page": Reply(200, b"<html></html>", HTML),
        }
    )
    settings = crawl_settings(tmp_path / "data").model_copy(update={"max_image_pixels": 1_000_000})
    sid = add(db, s.url("/f.xml"), SourceKind.RSS)
    outcome = run(settings, db)[sid]
    assert outcome.new == 4 and outcome.failed == 0
    assert dict(outcome.reasons) == {
        "image too large": 1,
        "corrupt image": 1,
        "image content type": 1,
        "image http 404": 1,
    }
    for item in items(db):
        assert item.image_sha256 is None and item.error and item.status is ItemStatus.PENDING


def test_robots_disallow_is_refused_and_recorded(
    http_server: LocalServer, db: Engine, tmp_path: Path
) -> None:
    s = http_server
    s.routes.update(
        {
            "/robots.txt": Reply(
                200, b"User-agent: *\nDisallow: /private\n", {"Content-Type": "text/plain"}
            ),
            "/private/page": Reply(200, b"<html><title>secret</title></html>", HTML),
        }
    )
    sid = add(db, s.url("/private/page"), SourceKind.PAGE)
    outcome = run(crawl_settings(tmp_path / "data"), db)[sid]
    assert not outcome.ok and outcome.reasons["robots.txt"] == 1
    assert s.count("/private/page") == 0 and count(db) == 0


def test_loopback_is_refused_unless_allowed(
    http_server: LocalServer, db: Engine, tmp_path: Path
) -> None:
    http_server.routes["/f.xml"] = Reply(200, rss([]), XML)
    sid = add(db, http_server.url("/f.xml"), SourceKind.RSS)
    outcome = run(crawl_settings(tmp_path / "data", allow_loopback=False), db)[sid]
    assert not outcome.ok and outcome.reasons["refused address"] == 1
    assert "loopback" in (outcome.error or "")
    assert http_server.hits == []  # not even robots.txt was asked


def test_crawl_command_and_source_admin(
    http_server: LocalServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cli: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.cli import main

    s = http_server
    s.routes["/feed.xml"] = Reply(
        200, rss([{"title": "Only story in town today", "link": s.url("/x")}]), XML
    )
    monkeypatch.setenv("SIMMIM_CRAWLER__ALLOW_LOOPBACK", "true")

    cli("init")
    assert "added source 1 'wire'" in cli(
        "source", "add", s.url("/feed.xml"), "--kind", "rss", "--every", "30m", "--name", "wire"
    )
    summary = cli("crawl")
    assert "1 new, 0 duplicate, 0 failed" in summary
    listing = cli("source", "list")
    assert "wire" in listing and "ago" in listing
    assert "disabled" in cli("source", "disable", "wire")
    assert "no source to crawl" in cli("crawl")
    assert "enabled" in cli("source", "enable", "1")
    assert "removed source 1" in cli("source", "remove", "wire")
    with pytest.raises(SystemExit) as info:
        main(["source", "add", "not a url", "--kind", "rss"])
    assert info.value.code == 2 and "not an http(s) URL" in capsys.readouterr().err


def test_a_url_stored_meanwhile_by_another_crawl_costs_only_that_item(
    http_server: LocalServer,
    db: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A source is stored in one transaction; when the database refuses one item (another
    process stored its URL after this crawl looked), the source is stored again item by
    item: the refused one is a duplicate, the others and the source's health are kept."""
    from indexer.crawl import ItemWriter

    s = http_server
    entries = [{"title": f"Story {i}", "link": s.url(f"/s{i}"), "summary": "x"} for i in range(4)]
    s.routes["/feed.xml"] = Reply(200, rss(entries), XML)
    settings = crawl_settings(tmp_path / "data")
    other = add(db, s.url("/other.xml"), SourceKind.RSS, "other")
    s.routes["/other.xml"] = Reply(200, rss([{**entries[2], "summary": "first version"}]), XML)
    run(settings, db, other)  # Story 2's URL is stored through another source
    monkeypatch.setattr(ItemWriter, "known_keys", lambda self, keys: set())  # looked too early
    feed = add(db, s.url("/feed.xml"), SourceKind.RSS, "feed")
    with caplog.at_level(logging.INFO, logger="indexer.crawl"):
        outcome = run(settings, db, feed)[feed]
    assert "storing item by item" in caplog.text  # the one transaction was refused
    assert (outcome.new, outcome.duplicate, outcome.failed) == (3, 1, 0)
    assert sorted(i.title for i in items(db)) == [f"Story {i}" for i in (0, 1, 2, 3)]
    assert source(db, feed).last_success_at is not None
    assert source(db, feed).consecutive_failures == 0


def test_a_dump_loads_in_one_command_with_its_dates(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cli: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 35: 2,388 posts took four `simmim crawl` runs, and `created_at` was ignored,
    so a whole history looked like one spike. Now `--until-done` drains it at once."""
    from simmim.db import make_engine

    monkeypatch.setenv("SIMMIM_CRAWLER__MAX_ITEMS_PER_SOURCE", "500")
    dump = tmp_path / "tweets.jsonl"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    dump.write_text(
        "\n".join(
            json.dumps(
                {
                    "id": n,
                    "text": f"post {n}: $ACME shares on the tape",
                    "created_at": (start + timedelta(hours=n)).strftime(
                        "%a %b %d %H:%M:%S +0000 %Y"
                    ),
                }
            )
            for n in range(2400)
        )
        + "\n"
    )
    cli("init")
    cli("source", "add", str(dump), "--kind", "jsonl", "--name", "tweets")
    summary = cli("crawl", "--until-done")
    assert "2400 new, 0 duplicate, 0 failed" in summary
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'simmim.db'}")
    with engine.connect() as connection:
        published = connection.execute(select(Item.published_at)).scalars().all()
    engine.dispose()
    dates = sorted(d.replace(tzinfo=UTC) for d in published)
    assert dates[0] == start and dates[-1] == start + timedelta(hours=2399)


def test_a_crawl_where_every_source_failed_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli: Callable[..., str]
) -> None:
    from app.cli import main

    cli("init")
    dump = tmp_path / "gone.jsonl"
    dump.write_text('{"id": 1, "text": "a post"}\n')
    cli("source", "add", str(dump), "--kind", "jsonl", "--name", "gone")
    dump.unlink()
    with pytest.raises(SystemExit) as info:
        main(["crawl"])
    assert info.value.code == 1 and "1 source(s) failed" in capsys.readouterr().out


def test_failed_records_are_listed_by_line_and_reason(db: Engine, tmp_path: Path) -> None:
    """Issue 35: failing line numbers were stored but no command showed them."""
    from indexer.source_admin import find_source, source_failures
    from simmim.db import session_factory, session_scope

    dump = tmp_path / "posts.jsonl"
    dump.write_text(
        "\n".join(
            [
                json.dumps({"id": 1, "text": "a fine post"}),
                "{not json",
                json.dumps({"id": 3, "author": "nobody"}),
                json.dumps({"id": 4, "text": "when?", "time": "yesterday"}),
            ]
        )
        + "\n"
    )
    sid = add(db, str(dump), SourceKind.JSONL)
    run(crawl_settings(tmp_path / "data"), db)
    with session_scope(session_factory(db)) as session:
        found = source_failures(session, find_source(session, str(sid)))
    assert [(r.where, r.reason) for r in found.records] == [
        ("line 2", "malformed JSON"),
        ("line 3", "empty post"),
        ("line 4", "bad time"),
    ]
    assert "'yesterday'" in found.records[2].detail and found.not_kept == 0
    assert all(r.times == 1 for r in found.records) and found.runs == 1


def test_failures_command_and_a_one_off_import(
    tmp_path: Path, cli: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`source add --import` drains a dump at once and leaves it off the schedule;
    `source failures` names the lines that did not load."""
    monkeypatch.setenv("SIMMIM_CRAWLER__MAX_ITEMS_PER_SOURCE", "100")
    dump = tmp_path / "history.jsonl"
    lines = [json.dumps({"id": n, "text": f"post {n} about $ACME"}) for n in range(350)]
    lines[120] = "{broken"
    dump.write_text("\n".join(lines) + "\n")
    cli("init")
    out = cli("source", "add", str(dump), "--kind", "jsonl", "--name", "history", "--import")
    assert "349 new, 0 duplicate, 1 failed" in out and "left disabled" in out
    assert "simmim source failures" in out
    listed = cli("source", "list")
    assert "history" in listed and " no " in listed
    failures = cli("source", "failures", "history")
    assert "line 121" in failures and "malformed JSON" in failures
    assert "1 record(s) from the last 4 crawl(s)" in failures
    assert "no failed records" in cli("source", "failures", "history", "--runs", "1")


def test_a_dump_without_a_known_time_field_says_so_and_takes_a_named_one(
    db: Engine, tmp_path: Path
) -> None:
    """Issue 35: posts whose time sits under another name were silently dated "now"."""
    dump = tmp_path / "export.jsonl"
    dump.write_text(
        "\n".join(
            json.dumps({"id": n, "text": f"post {n}", "meta": {"posted": f"2026-02-0{n}T10:00Z"}})
            for n in (1, 2, 3)
        )
        + "\n"
    )
    sid = add(db, str(dump), SourceKind.JSONL)
    outcome = run(crawl_settings(tmp_path / "data"), db)[sid]
    assert outcome.new == 3 and outcome.ok and outcome.reasons["no time field"] == 1
    [note] = outcome.examples
    assert "3 of 3 posts have none of time, created_at" in note["detail"]
    assert "SIMMIM_CRAWLER__JSONL_TIME_FIELD" in note["detail"]

    again = tmp_path / "again.jsonl"
    again.write_text(dump.read_text().replace('"id": ', '"id": 1'))
    sid2 = add(db, str(again), SourceKind.JSONL, name="named")
    named = run(crawl_settings(tmp_path / "data", jsonl_time_field="meta.posted"), db)[sid2]
    assert named.new == 3 and "no time field" not in named.reasons
    dated = sorted(i.published_at for i in items(db) if i.source_id == sid2)
    assert dated[0] == datetime(2026, 2, 1, 10, tzinfo=UTC)
